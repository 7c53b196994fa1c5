//! Durations on the command line and in the config file: `90s`, `30m`, `1h`, `2h30m`,
//! `0`.

/// Parses a duration such as `90s`, `30m`, `1h`, `2h30m` or `0`.
pub fn parse(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let d: jiff::SignedDuration = t
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (examples: 90s, 30m, 1h, 2h30m)"))?;
    std::time::Duration::try_from(d).map_err(|_| format!("{text:?} is negative"))
}

/// An age such as `2d`, `36h` or `90m`, in seconds (a day is 24 hours).
pub fn parse_age(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an age (examples: 2d, 36h, 90m)");
    let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
    let secs = span
        .total((
            jiff::Unit::Second,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .map_err(|_| bad())?;
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(secs as i64)
}
