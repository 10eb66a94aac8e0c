//! A contact list from CSV, as spreadsheets export it.
//!
//! The header row names the columns; the caller maps which holds the number, the name and
//! (optionally) the contact's time zone. Every other column is kept as the contact's fields
//! (`{first_name}`, `{appointment_time}` in the agent's prompt). Numbers are normalised to E.164
//! with libphonenumber's metadata (the list's default country for national numbers). A row
//! that cannot be used is reported with its line and reason while the rest import; a number
//! that appears twice is merged into its first row. The delimiter (`,` `;` or tab) is taken from
//! the header line, since spreadsheets in many locales export `;`.

use crate::window::zone;
use crate::Error;
use phonenumber::country::Id as Country;
use phonenumber::Mode;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Which columns (by their header names) hold what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    pub number: String,
    pub name: Option<String>,
    /// A column of IANA zone names; contacts without one get the default zone.
    pub time_zone: Option<String>,
}

/// How to read numbers and zones that a row does not spell out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// Two-letter ISO country for numbers written without `+` and a country code.
    pub country: Option<String>,
    /// IANA zone for contacts whose row names none.
    pub time_zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedContact {
    /// E.164, `+` and digits.
    pub number: String,
    pub name: Option<String>,
    pub time_zone: String,
    /// The other columns, by header name (empty cells left out).
    pub fields: Map<String, Value>,
    /// The line the contact was first read from.
    pub line: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub contacts: Vec<ImportedContact>,
    pub rejected: Vec<RejectedRow>,
    /// Rows whose number an earlier row already had: (line, the earlier line).
    pub merged: Vec<(u64, u64)>,
}

/// Reads `csv`. Fails as a whole only when the list cannot be read at all (no header, a
/// missing mapped column, a bad default); a bad row is a [`RejectedRow`].
pub fn import_csv(
    csv: &[u8],
    columns: &Columns,
    defaults: &Defaults,
) -> Result<ImportReport, Error> {
    let country = defaults
        .country
        .as_deref()
        .map(|c| {
            c.trim()
                .to_ascii_uppercase()
                .parse::<Country>()
                .map_err(|_| Error::Country(c.to_string()))
        })
        .transpose()?;
    zone(&defaults.time_zone)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(csv))
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(csv);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Csv(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| Error::MissingColumn(name.to_string()))
    };
    let number_at = find(&columns.number)?;
    let name_at = columns.name.as_deref().map(find).transpose()?;
    let zone_at = columns.time_zone.as_deref().map(find).transpose()?;

    let mut report = ImportReport::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                report.rejected.push(RejectedRow {
                    line,
                    reason: row_error(&e),
                });
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        let reject = |reason: String| RejectedRow { line, reason };
        let cell = |at: Option<usize>| at.and_then(|i| row.get(i)).filter(|c| !c.is_empty());
        let number = match e164(cell(Some(number_at)).unwrap_or(""), country) {
            Ok(n) => n,
            Err(reason) => {
                report.rejected.push(reject(reason));
                continue;
            }
        };
        let time_zone = match cell(zone_at) {
            Some(z) if zone(z).is_err() => {
                report
                    .rejected
                    .push(reject(format!("unknown time zone {z:?}")));
                continue;
            }
            Some(z) => z.to_string(),
            None => defaults.time_zone.clone(),
        };
        let fields: Map<String, Value> = header
            .iter()
            .zip(row.iter())
            .enumerate()
            .filter(|(i, (_, v))| {
                Some(*i) != Some(number_at)
                    && !v.is_empty()
                    && Some(*i) != zone_at
                    && Some(*i) != name_at
            })
            .map(|(_, (k, v))| (k.clone(), Value::String(v.to_string())))
            .collect();
        let contact = ImportedContact {
            number,
            name: cell(name_at).map(str::to_string),
            time_zone,
            fields,
            line,
        };
        match seen.get(&contact.number) {
            Some(&first) => {
                let kept = &mut report.contacts[first];
                report.merged.push((line, kept.line));
                if kept.name.is_none() {
                    kept.name = contact.name;
                }
                for (k, v) in contact.fields {
                    kept.fields.entry(k).or_insert(v);
                }
            }
            None => {
                seen.insert(contact.number.clone(), report.contacts.len());
                report.contacts.push(contact);
            }
        }
    }
    Ok(report)
}

/// `raw` as E.164, or why it cannot be dialled.
fn e164(raw: &str, country: Option<Country>) -> Result<String, String> {
    if raw.is_empty() {
        return Err("no number".into());
    }
    if !raw.starts_with('+') && !raw.starts_with("00") && country.is_none() {
        return Err(format!(
            "{raw:?} has no country code, and the list has no default country"
        ));
    }
    let parsed = phonenumber::parse(country, raw)
        .map_err(|e| format!("{raw:?} is not a phone number ({e})"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(format!("{raw:?} is not a valid number for its country"));
    }
    Ok(parsed.format().mode(Mode::E164).to_string())
}

fn row_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} columns where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text (save the list as CSV UTF-8)".into(),
        _ => e.to_string(),
    }
}

/// The most frequent of `,` `;` and tab on the first line.
fn delimiter(csv: &[u8]) -> u8 {
    let first = csv.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |d: u8| first.iter().filter(|&&b| b == d).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| count(d))
        .filter(|&d| count(d) > 0)
        .unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report
    use super::*;

    fn columns() -> Columns {
        Columns {
            number: "Phone".into(),
            name: Some("Name".into()),
            time_zone: Some("Zone".into()),
        }
    }

    fn defaults(country: Option<&str>) -> Defaults {
        Defaults {
            country: country.map(str::to_string),
            time_zone: "Europe/London".into(),
        }
    }

    #[test]
    fn numbers_are_normalised_and_bad_rows_reported_by_line() {
        let csv = "Name,Phone,Zone,first_name\n\
                   Ann Lee,020 7946 0958,,Ann\n\
                   Bob Roy,+1 (212) 555-0143,America/New_York,Bob\n\
                   Cy,12345,,Cy\n\
                   Di,+44 20 7946 0958,,\n\
                   Ed,+33 1 23 45 67 89,Mars/Base,Ed\n\
                   Flo,,,Flo\n\
                   Gus,+49 30 901820,Europe/Berlin\n\
                   Hal,0044 161 496 0000,,Hal\n";
        let r = import_csv(csv.as_bytes(), &columns(), &defaults(Some("gb"))).unwrap();
        let numbers: Vec<&str> = r.contacts.iter().map(|c| c.number.as_str()).collect();
        assert_eq!(numbers, ["+442079460958", "+12125550143", "+441614960000"]);
        assert_eq!(r.contacts[0].time_zone, "Europe/London");
        assert_eq!(r.contacts[1].time_zone, "America/New_York");
        assert_eq!(r.contacts[0].fields["first_name"], "Ann");
        assert_eq!(r.contacts[0].name.as_deref(), Some("Ann Lee"));
        assert_eq!(r.merged, [(5, 2)], "Di's number is Ann's");
        let rejected: Vec<u64> = r.rejected.iter().map(|x| x.line).collect();
        assert_eq!(rejected, [4, 6, 7, 8], "{:?}", r.rejected);
        assert!(r.rejected[1].reason.contains("Mars/Base"));
        assert!(r.rejected[2].reason.contains("no number"));
        assert!(
            r.rejected[3].reason.contains("columns"),
            "{}",
            r.rejected[3].reason
        );
    }

    #[test]
    fn national_numbers_need_a_default_country() {
        let csv = "Phone\n020 7946 0958\n+442079460958\n";
        let cols = Columns {
            number: "phone".into(),
            name: None,
            time_zone: None,
        };
        let r = import_csv(csv.as_bytes(), &cols, &defaults(None)).unwrap();
        assert_eq!(r.contacts.len(), 1);
        assert!(r.rejected[0].reason.contains("default country"));
    }

    #[test]
    fn semicolon_lists_and_unreadable_lists() {
        let csv = "Name;Phone;Zone\nAnn;+44 20 7946 0958;\n";
        let r = import_csv(csv.as_bytes(), &columns(), &defaults(None)).unwrap();
        assert_eq!(r.contacts[0].number, "+442079460958");
        assert_eq!(
            import_csv(b"Name,Tel\n", &columns(), &defaults(None)).unwrap_err(),
            Error::MissingColumn("Phone".into())
        );
        assert_eq!(
            import_csv(b"Phone\n", &columns(), &defaults(Some("XX"))).unwrap_err(),
            Error::Country("XX".into())
        );
        let latin1 = b"Name,Phone,Zone\nJos\xe9,+442079460958,\n";
        let r = import_csv(latin1, &columns(), &defaults(None)).unwrap();
        assert!(r.rejected[0].reason.contains("UTF-8"), "{:?}", r.rejected);
    }
}
