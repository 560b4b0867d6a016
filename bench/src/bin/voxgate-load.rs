fn main() -> anyhow::Result<()> {
    anyhow::bail!("voxgate-load: the media workers are not built yet")
}
