//! Raw C declarations (hand-written from PocketSphinx 5.1.1 `include/` and espeak-ng's
//! `speak_lib.h`; only what the wrappers use).
#![allow(non_camel_case_types, missing_docs)]

use std::os::raw::{c_char, c_int, c_short, c_uint, c_void};

#[repr(C)]
pub struct ps_config_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct ps_decoder_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct logmath_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct ps_lattice_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct ps_latnode_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct ps_latlink_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct ps_seg_t {
    _p: [u8; 0],
}
#[repr(C)]
pub struct ngram_model_t {
    _p: [u8; 0],
}

extern "C" {
    pub fn ps_config_init(defn: *const c_void) -> *mut ps_config_t;
    pub fn ps_config_free(cfg: *mut ps_config_t) -> c_int;
    pub fn ps_config_set_str(
        cfg: *mut ps_config_t,
        name: *const c_char,
        val: *const c_char,
    ) -> *const c_void;
    pub fn ps_init(cfg: *mut ps_config_t) -> *mut ps_decoder_t;
    pub fn ps_free(ps: *mut ps_decoder_t) -> c_int;
    pub fn ps_add_jsgf_string(
        ps: *mut ps_decoder_t,
        name: *const c_char,
        jsgf: *const c_char,
    ) -> c_int;
    pub fn ps_activate_search(ps: *mut ps_decoder_t, name: *const c_char) -> c_int;
    pub fn ps_start_utt(ps: *mut ps_decoder_t) -> c_int;
    pub fn ps_process_raw(
        ps: *mut ps_decoder_t,
        data: *const i16,
        n_samples: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;
    pub fn ps_end_utt(ps: *mut ps_decoder_t) -> c_int;
    pub fn ps_get_hyp(ps: *mut ps_decoder_t, out_best_score: *mut i32) -> *const c_char;
    pub fn logmath_exp(lmath: *mut logmath_t, logb_p: c_int) -> f64;
    pub fn err_set_logfp(stream: *mut libc::FILE);
    pub fn ps_get_cmn(ps: *mut ps_decoder_t, update: c_int) -> *const c_char;
    pub fn ps_get_n_frames(ps: *mut ps_decoder_t) -> c_int;
    pub fn ps_seg_iter(ps: *mut ps_decoder_t) -> *mut ps_seg_t;
    pub fn ps_seg_next(seg: *mut ps_seg_t) -> *mut ps_seg_t;
    pub fn ps_seg_word(seg: *mut ps_seg_t) -> *const c_char;
    pub fn ps_seg_frames(seg: *mut ps_seg_t, out_sf: *mut c_int, out_ef: *mut c_int);
    pub fn ps_get_lattice(ps: *mut ps_decoder_t) -> *mut ps_lattice_t;
    pub fn ps_lattice_get_logmath(dag: *mut ps_lattice_t) -> *mut logmath_t;
    pub fn ps_lattice_bestpath(
        dag: *mut ps_lattice_t,
        lmset: *mut ngram_model_t,
        lwf: f32,
        ascale: f32,
    ) -> *mut ps_latlink_t;
    pub fn ps_lattice_posterior(
        dag: *mut ps_lattice_t,
        lmset: *mut ngram_model_t,
        ascale: f32,
    ) -> i32;
    pub fn ps_latlink_pred(link: *mut ps_latlink_t) -> *mut ps_latlink_t;
    pub fn ps_latlink_baseword(dag: *mut ps_lattice_t, link: *mut ps_latlink_t) -> *const c_char;
    pub fn ps_latlink_nodes(
        link: *mut ps_latlink_t,
        out_src: *mut *mut ps_latnode_t,
    ) -> *mut ps_latnode_t;
    pub fn ps_latnode_baseword(dag: *mut ps_lattice_t, node: *mut ps_latnode_t) -> *const c_char;
}

pub const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
pub const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
pub const ESPEAK_CHARS_UTF8: c_uint = 1;
pub const ESPEAK_SSML: c_uint = 0x10;
pub const ESPEAK_RATE: c_int = 1;
pub const POS_CHARACTER: c_int = 1;
pub const EE_OK: c_int = 0;

pub type t_espeak_callback =
    unsafe extern "C" fn(wav: *mut c_short, numsamples: c_int, events: *mut c_void) -> c_int;

extern "C" {
    pub fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    pub fn espeak_SetSynthCallback(cb: Option<t_espeak_callback>);
    pub fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    pub fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int) -> c_int;
    pub fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: c_uint,
        position_type: c_int,
        end_position: c_uint,
        flags: c_uint,
        unique_identifier: *mut c_uint,
        user_data: *mut c_void,
    ) -> c_int;
}
