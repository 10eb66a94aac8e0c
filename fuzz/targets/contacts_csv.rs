//! Arbitrary bytes as an uploaded contact list: the importer returns a report or an error, and
//! every contact it keeps has an E.164 number, never panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_dialer::import::{import_csv, Columns, Defaults};

fuzz_target!(|data: &[u8]| {
    let columns = Columns {
        number: "number".into(),
        name: Some("name".into()),
        time_zone: Some("zone".into()),
    };
    let defaults = Defaults {
        country: Some("GB".into()),
        time_zone: "Europe/London".into(),
    };
    if let Ok(report) = import_csv(data, &columns, &defaults) {
        for c in &report.contacts {
            assert!(c.number.starts_with('+') && c.number[1..].bytes().all(|b| b.is_ascii_digit()));
        }
    }
});
