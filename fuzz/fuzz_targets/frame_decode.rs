//! Frame decoding: any bytes give a frame or an error, never a panic, and a decoded frame
//! re-encodes to the same bytes (one byte string, one meaning).
#![no_main]

use approdo_core::content::{Content, open_plaintext};
use approdo_core::wire::{self, ClientFrame, RelayFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = wire::decode::<ClientFrame>(data) {
        assert_eq!(wire::encode(&f).expect("re-encode"), data);
    }
    if let Ok(f) = wire::decode::<RelayFrame>(data) {
        assert_eq!(wire::encode(&f).expect("re-encode"), data);
    }
    let _: Result<Content, _> = open_plaintext(data);
});
