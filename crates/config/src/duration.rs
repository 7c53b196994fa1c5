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
