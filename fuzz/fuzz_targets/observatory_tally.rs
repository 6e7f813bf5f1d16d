//! Another node's observatory counts: any bytes are refused or read into a tally that
//! encodes back to the same bytes, and whatever is read counts into tables without a panic.
#![no_main]

use approdo_relay::observatory::aggregate_counted;
use approdo_relay::observatory::tally::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(counted) = decode(data) else {
        return;
    };
    assert_eq!(decode(&encode(&counted).expect("what was read fits")), Ok(counted.clone()));
    let _ = aggregate_counted(&counted, &["veneto".to_owned()]);
});
