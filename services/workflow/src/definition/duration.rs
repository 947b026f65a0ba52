//! ISO 8601 durations as definitions write them: `P1D`, `PT4H`, `P1DT12H`, `PT30M`, `P2W`.
//! Years and months are refused: their length depends on the calendar.

use chrono::Duration;

/// Parses an ISO 8601 duration of weeks, days, hours, minutes and (possibly fractional) seconds.
///
/// # Errors
/// What is wrong with `text`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an ISO 8601 duration such as P1D, PT4H or P1DT30M");
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return Err(bad()),
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut millis: i64 = 0;
    let mut add = |amount: f64, unit_ms: f64| -> Result<(), String> {
        let value = amount * unit_ms;
        if !value.is_finite() || value > 1e15 {
            return Err(format!("`{text}` is too long"));
        }
        #[expect(clippy::cast_possible_truncation, reason = "bounded above")]
        let value = value.round() as i64;
        millis += value;
        Ok(())
    };
    for (amount, unit) in components(date).ok_or_else(bad)? {
        match unit {
            'W' => add(amount, 7.0 * 86_400_000.0)?,
            'D' => add(amount, 86_400_000.0)?,
            'Y' | 'M' => {
                return Err(format!(
                    "`{text}`: years and months have no fixed length; use days"
                ));
            }
            _ => return Err(bad()),
        }
    }
    for (amount, unit) in components(time.unwrap_or("")).ok_or_else(bad)? {
        match unit {
            'H' => add(amount, 3_600_000.0)?,
            'M' => add(amount, 60_000.0)?,
            'S' => add(amount, 1000.0)?,
            _ => return Err(bad()),
        }
    }
    if millis <= 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(Duration::milliseconds(millis))
}

/// `1D2H` → [(1, 'D'), (2, 'H')]; `None` when malformed.
fn components(text: &str) -> Option<Vec<(f64, char)>> {
    let mut out = Vec::new();
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
        } else {
            if number.is_empty() {
                return None;
            }
            out.push((number.parse().ok()?, c));
            number.clear();
        }
    }
    number.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_of_days_hours_minutes_and_seconds() {
        assert_eq!(parse("P1D"), Ok(Duration::days(1)));
        assert_eq!(parse("P2W"), Ok(Duration::days(14)));
        assert_eq!(parse("PT4H"), Ok(Duration::hours(4)));
        assert_eq!(parse("P1DT12H30M"), Ok(Duration::minutes(36 * 60 + 30)));
        assert_eq!(parse("PT1.5S"), Ok(Duration::milliseconds(1500)));
    }

    #[test]
    fn malformed_or_calendar_durations_are_refused() {
        for bad in [
            "", "P", "PT", "1D", "P1H", "PT1D", "PD", "P1DT", "PT0S", "P1.2.3D",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("P1M").unwrap_err().contains("use days"));
        assert!(parse("P1Y").unwrap_err().contains("use days"));
    }
}
