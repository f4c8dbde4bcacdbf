//! Times and dates read from SQLite without parsing a format string on every value.
//!
//! SQLite keeps a `Timestamp` as text (diesel writes `%F %T%.f`) and diesel reads it back with
//! `NaiveDateTime::parse_from_str`, trying its formats in turn: each value parses the format
//! string itself again (chrono's `StrftimeItems`). A key's state holds seven such values, and
//! with the key cache off that parsing was 9% of a `/info`'s instructions (callgrind). [`Fast`] is what the rows of
//! that read deserialise through (`#[diesel(deserialize_as = Fast<...>)]`): the text diesel
//! writes (`YYYY-MM-DD HH:MM:SS[.f]`, or with a `T`) is read at fixed places, and anything else
//! (other lengths of year, an offset, a leap second, a Julian day number) goes to diesel's own
//! parsing, so the value is always the one diesel would give. PostgreSQL sends binary values:
//! its path is diesel's, unchanged.

use super::{MultiBackend, MultiRawValue};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::sql_types::{Date, Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A value of `T` read as [`parse_datetime`] and [`parse_date`] read it (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fast<T>(pub T);

/// A row of one column (what `deserialize_as` loads a field as), as diesel's own
/// `#[derive(FromSqlRow)]` would make it.
impl<T, ST, DB> diesel::deserialize::Queryable<ST, DB> for Fast<T>
where
    DB: diesel::backend::Backend,
    ST: diesel::sql_types::SingleValue,
    Fast<T>: FromSql<ST, DB>,
{
    type Row = Self;

    fn build(row: Self) -> deserialize::Result<Self> {
        Ok(row)
    }
}

macro_rules! fast_from_sql {
    ($t:ty, $st:ty, $parse:path) => {
        impl From<Fast<$t>> for $t {
            fn from(v: Fast<$t>) -> $t {
                v.0
            }
        }

        impl From<Fast<Option<$t>>> for Option<$t> {
            fn from(v: Fast<Option<$t>>) -> Option<$t> {
                v.0
            }
        }

        impl FromSql<$st, Sqlite> for Fast<$t> {
            fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                let fast = match value.value_type() {
                    Some(diesel::sqlite::SqliteType::Text) => $parse(value.read_text()),
                    _ => None,
                };
                match fast {
                    Some(v) => Ok(Fast(v)),
                    None => <$t as FromSql<$st, Sqlite>>::from_sql(value).map(Fast),
                }
            }
        }

        impl FromSql<$st, Pg> for Fast<$t> {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
                <$t as FromSql<$st, Pg>>::from_sql(value).map(Fast)
            }
        }

        impl FromSql<$st, MultiBackend> for Fast<$t> {
            fn from_sql(value: MultiRawValue<'_>) -> deserialize::Result<Self> {
                value.from_sql::<Self, $st>()
            }
        }

        impl<DB> FromSql<Nullable<$st>, DB> for Fast<Option<$t>>
        where
            DB: diesel::backend::Backend,
            Fast<$t>: FromSql<$st, DB>,
        {
            fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
                <Fast<$t> as FromSql<$st, DB>>::from_sql(value).map(|v| Fast(Some(v.0)))
            }

            fn from_nullable_sql(value: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
                match value {
                    Some(v) => Self::from_sql(v),
                    None => Ok(Fast(None)),
                }
            }
        }
    };
}

fast_from_sql!(NaiveDateTime, Timestamp, parse_datetime);
fast_from_sql!(NaiveDate, Date, parse_date);

/// `n` ASCII digits at `at` in `b`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    b.get(at..at + n)?.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD` at the start of `b`.
fn date_at(b: &[u8]) -> Option<NaiveDate> {
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let year = i32::try_from(digits(b, 0, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(b, 5, 2)?, digits(b, 8, 2)?)
}

/// `YYYY-MM-DD`, as diesel writes a `Date` (`%F`) with a four-digit year; `None` for any other
/// text.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 {
        return None;
    }
    date_at(b)
}

/// `YYYY-MM-DD HH:MM:SS` (or with a `T`), then `.` and one to nine digits or nothing, as
/// diesel writes a `Timestamp` (`%F %T%.f`) with a four-digit year; `None` for any other text,
/// a leap second included.
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = date_at(b)?;
    let (h, m, s) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(frac, 0, frac.len())? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    date.and_hms_nano_opt(h, m, s, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What diesel's own SQLite parsing gives for `text` (its formats, in its order).
    fn diesel_datetime(text: &str) -> Option<NaiveDateTime> {
        [
            "%F %T%.f",
            "%F %T%.f%:z",
            "%F %T",
            "%F %T%:z",
            "%FT%T",
            "%FT%T%.f",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    }

    #[test]
    fn reads_what_diesel_writes_as_diesel_reads_it() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        for (h, m, s, nano) in [
            (0, 0, 0, 0),
            (3, 4, 5, 6_000),
            (21, 4, 10, 623_686_000),
            (9, 5, 7, 120_000_000),
            (23, 59, 59, 1),
            (12, 0, 0, 999_999_999),
        ] {
            let at = day.and_hms_nano_opt(h, m, s, nano).unwrap();
            let text = at.format("%F %T%.f").to_string();
            assert_eq!(parse_datetime(&text), Some(at), "{text}");
            let with_t = text.replacen(' ', "T", 1);
            assert_eq!(parse_datetime(&with_t), Some(at), "{with_t}");
        }
        for text in [
            "2026-12-07 03:04:05.1",
            "2026-12-07 03:04:05.12",
            "2026-12-07 03:04:05.1234",
            "2026-12-07 03:04:05.12345678",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.999999999",
            "2024-02-29 12:00:00",
        ] {
            assert_eq!(parse_datetime(text), diesel_datetime(text), "{text}");
            assert!(parse_datetime(text).is_some(), "{text}");
        }
    }

    #[test]
    fn leaves_everything_else_to_diesel() {
        for text in [
            "",
            "2026-12-07",
            "2026-12-07 03:04",
            "2026-12-07 03:04:05.",
            "2026-12-07 03:04:05.1234567891",
            "2026-12-07 03:04:05Z",
            "2026-12-07 03:04:05+01:00",
            "2026-12-07 23:59:60",
            "2026-02-30 00:00:00",
            "2026-13-01 00:00:00",
            "2026-12-07 24:00:00",
            "+2026-12-07 03:04:05",
            "10000-01-01 00:00:00",
            "2026/12/07 03:04:05",
            "2026-12-07 03:04:05.1a",
            "２０２６-12-07 03:04:05",
            "2461016.5",
        ] {
            assert_eq!(parse_datetime(text), None, "{text}");
        }
        assert_eq!(
            parse_date("2026-12-07"),
            NaiveDate::from_ymd_opt(2026, 12, 7)
        );
        for text in [
            "2026-12-7",
            "2026-12-07 ",
            "2026-02-30",
            "20261207",
            "-001-01-01",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    /// Through a real SQLite connection, every way a time can be stored reads as diesel reads it.
    #[test]
    fn rows_read_as_diesel_reads_them() {
        use diesel::prelude::*;
        use diesel::sql_types::{Date, Nullable, Timestamp};
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE t (n INTEGER, a TIMESTAMP, b TIMESTAMP, d DATE, e DATE)")
            .execute(&mut c)
            .unwrap();
        diesel::sql_query(
            "INSERT INTO t VALUES \
             (1, '2026-12-07 03:04:05.623686', NULL, '2026-12-07', NULL), \
             (2, '2026-12-07T03:04:05', '2026-12-07 03:04:05.1', '2026-01-31', '2027-02-28'), \
             (3, '2026-12-07 03:04:05Z', '2026-12-07 03:04:05+00:00', '2026-12-07', '2026-12-07'), \
             (4, 2461016.5, '2026-12-07 03:04', '2026-12-07', NULL)",
        )
        .execute(&mut c)
        .unwrap();
        type Row = (Timestamp, Nullable<Timestamp>, Date, Nullable<Date>);
        type FastRow = (
            Fast<NaiveDateTime>,
            Fast<Option<NaiveDateTime>>,
            Fast<NaiveDate>,
            Fast<Option<NaiveDate>>,
        );
        let q = || diesel::dsl::sql::<Row>("SELECT a, b, d, e FROM t ORDER BY n");
        let fast: Vec<FastRow> = q().load(&mut c).unwrap();
        let plain: Vec<(
            NaiveDateTime,
            Option<NaiveDateTime>,
            NaiveDate,
            Option<NaiveDate>,
        )> = q().load(&mut c).unwrap();
        assert_eq!(fast.len(), 4);
        for (f, p) in fast.into_iter().zip(plain) {
            assert_eq!((f.0.0, f.1.0, f.2.0, f.3.0), p);
        }
        let bad: Result<Vec<Fast<NaiveDateTime>>, _> =
            diesel::dsl::sql::<Timestamp>("SELECT 'not a time'").load(&mut c);
        assert!(bad.is_err(), "a value diesel refuses is refused");
    }
}
