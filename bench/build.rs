//! Links Debian's libsrtp2 (`libsrtp2-dev`) for the interop tests and the comparison
//! benchmark; voxgate itself never links it.
fn main() {
    println!("cargo:rustc-link-lib=srtp2");
}
