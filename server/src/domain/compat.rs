//! Marketplace version compatibility (DESIGN §8, protocol §4.4 and §15): the GLPI version a
//! request comes from (its `User-Agent`, `GLPI/<x.y.z> (...)`), the requirement a plugin version
//! may carry (Cargo's semver requirement syntax: `~10.0`, `>=10.0.10, <12`), and which versions
//! a GLPI is offered.
//!
//! GLPI itself never filters by compatibility: it shows a plugin whose `versions` is empty as
//! "not available for your GLPI version". So the server answers, per plugin, only the versions
//! whose requirement the caller's GLPI version meets, and every version when the agent names no
//! GLPI version.

use super::Invalid;
use semver::{Version, VersionReq};

/// The longest requirement accepted, in bytes.
pub const MAX_COMPATIBILITY_LEN: usize = 200;

/// Checks a version's `compatibility` requirement. Returns it trimmed, or `None` when absent or
/// blank (a version without a requirement is offered to every GLPI).
pub fn check_compatibility(requirement: Option<&str>) -> Result<Option<&str>, Invalid> {
    let Some(text) = requirement.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.len() > MAX_COMPATIBILITY_LEN {
        return Err(Invalid(format!(
            "compatibility must be at most {MAX_COMPATIBILITY_LEN} characters"
        )));
    }
    VersionReq::parse(text).map_err(|e| {
        Invalid(format!(
            "compatibility {text:?} is not a valid requirement on the GLPI version \
             (Cargo's semver syntax, e.g. \"~10.0\" or \">=10.0.10, <12\"): {e}"
        ))
    })?;
    Ok(Some(text))
}

/// The GLPI version a `User-Agent` names: `GLPI/10.0.18 (installation-mode:TARBALL)`,
/// `GLPI/10.0.18`, `GLPI/11.0.0-rc1`, `GLPI/11.0`. `None` when the agent is not GLPI or its
/// version cannot be read.
pub fn glpi_version(user_agent: &str) -> Option<Version> {
    let agent = user_agent.trim_start();
    let (product, rest) = agent.split_at_checked(5)?;
    if !product.eq_ignore_ascii_case("GLPI/") {
        return None;
    }
    let token = rest
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .next()?;
    parse_glpi_version(token)
}

/// Reads a GLPI version number as GLPI compares versions with plugins (its normalised version
/// without the stability suffix): `10.0.18` as is; `11.0` and `12` with the missing parts as 0;
/// `11.0.0-rc1`, `11.0.0rc1` and `10.0.19-dev` as their release (`11.0.0`, `10.0.19`), so a
/// pre-release GLPI is offered what its release would be; parts after the third (`9.4.6.1`) are
/// ignored. `None` for anything else (`abc`, `11.`, `.1`, an empty string).
pub fn parse_glpi_version(text: &str) -> Option<Version> {
    let text = text.trim();
    let core_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let core = &text[..core_len];
    let mut parts = [0u64; 3];
    for (i, part) in core.split('.').enumerate() {
        if part.is_empty() || part.len() > 9 {
            return None;
        }
        if let Some(slot) = parts.get_mut(i) {
            *slot = part.parse().ok()?;
        }
    }
    Some(Version::new(parts[0], parts[1], parts[2]))
}

/// Whether a version whose requirement is `compatibility` is offered to `glpi`: always when the
/// caller named no GLPI version or the version has no requirement; otherwise when the version
/// meets it. A requirement that cannot be read (never stored: it is checked on the way in)
/// matches nothing.
pub fn compatible(compatibility: Option<&str>, glpi: Option<&Version>) -> bool {
    let (Some(glpi), Some(text)) = (glpi, compatibility) else {
        return true;
    };
    VersionReq::parse(text).is_ok_and(|req| req.matches(glpi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Version> {
        Some(Version::parse(s).unwrap())
    }

    #[test]
    fn the_glpi_version_is_read_from_the_user_agent() {
        for (agent, want) in [
            ("GLPI/10.0.18 (installation-mode:TARBALL)", v("10.0.18")),
            ("GLPI/10.0.18", v("10.0.18")),
            (
                "  GLPI/11.0.1 (installation-mode:DOCKER; extra)",
                v("11.0.1"),
            ),
            ("glpi/12.0.0 (installation-mode:GIT)", v("12.0.0")),
            ("GLPI/11.0.0-rc1 (installation-mode:TARBALL)", v("11.0.0")),
            ("GLPI/11.0.0rc1", v("11.0.0")),
            ("GLPI/10.0.19-dev", v("10.0.19")),
            ("GLPI/11.0+build.5", v("11.0.0")),
            ("GLPI/11.0 (installation-mode:TARBALL)", v("11.0.0")),
            ("GLPI/12", v("12.0.0")),
            ("GLPI/12(installation-mode:TARBALL)", v("12.0.0")),
            ("GLPI/9.4.6.1", v("9.4.6")),
        ] {
            assert_eq!(glpi_version(agent), want, "{agent}");
        }
        for agent in [
            "",
            "GLPI",
            "GLPI/",
            "GLPI/ 10.0.18",
            "GLPI/abc",
            "GLPI/11.",
            "GLPI/.1",
            "GLPI/1..2",
            "GLPI/99999999999.0.0",
            "Mozilla/5.0 GLPI/10.0.18",
            "curl/8.5.0",
            "GLPIX/10.0.18",
            "reqwest/0.13",
        ] {
            assert_eq!(glpi_version(agent), None, "{agent}");
        }
    }

    #[test]
    fn requirements_use_cargo_syntax_and_blank_means_none() {
        assert_eq!(check_compatibility(None), Ok(None));
        assert_eq!(check_compatibility(Some("  ")), Ok(None));
        assert_eq!(check_compatibility(Some(" ~10.0 ")), Ok(Some("~10.0")));
        assert_eq!(
            check_compatibility(Some(">=10.0.10, <12")),
            Ok(Some(">=10.0.10, <12"))
        );
        assert_eq!(check_compatibility(Some("*")), Ok(Some("*")));
        for bad in ["banana", ">=10.0 <12", "10.0.x.y", "=>10", "~10.0,"] {
            let e = check_compatibility(Some(bad)).unwrap_err();
            assert!(e.0.contains("compatibility") && e.0.contains(bad), "{e}");
        }
        let long = format!(">={}", "1".repeat(MAX_COMPATIBILITY_LEN));
        assert!(check_compatibility(Some(&long)).is_err());
    }

    #[test]
    fn versions_are_offered_to_the_glpi_versions_they_accept() {
        let g10 = glpi_version("GLPI/10.0.18 (installation-mode:TARBALL)");
        let g10_early = glpi_version("GLPI/10.0.2");
        let g11 = glpi_version("GLPI/11.0.1 (installation-mode:TARBALL)");
        let g11_rc = glpi_version("GLPI/11.0.0-rc1");
        let g12 = glpi_version("GLPI/12.0.0 (installation-mode:TARBALL)");
        let ok = |req: Option<&str>, g: &Option<Version>| compatible(req, g.as_ref());
        // no requirement, or no GLPI version: every version
        for g in [&g10, &g11, &g12, &None] {
            assert!(ok(None, g));
        }
        assert!(ok(Some("~10.0"), &None));
        // ~10.0
        assert!(ok(Some("~10.0"), &g10) && ok(Some("~10.0"), &g10_early));
        assert!(!ok(Some("~10.0"), &g11) && !ok(Some("~10.0"), &g12));
        // ^10.0.10 (Cargo's default operator)
        assert!(ok(Some("^10.0.10"), &g10) && !ok(Some("^10.0.10"), &g10_early));
        assert!(ok(Some("10.0.10"), &g10) && !ok(Some("10.0.10"), &g11));
        // a range over two majors
        let r = Some(">=10.0.10, <12");
        assert!(ok(r, &g10) && ok(r, &g11) && ok(r, &g11_rc));
        assert!(!ok(r, &g10_early) && !ok(r, &g12));
        // a release candidate of 11 is offered what 11.0.0 is
        assert!(ok(Some("~11.0"), &g11_rc) && !ok(Some("<11"), &g11_rc));
        assert!(ok(Some(">=12"), &g12) && !ok(Some(">=12"), &g11));
        // two-part versions: the patch is 0
        let g11_two = glpi_version("GLPI/11.0");
        assert!(ok(Some("~11.0"), &g11_two) && !ok(Some(">=11.0.1"), &g11_two));
        // an unreadable requirement matches no GLPI version
        assert!(!ok(Some("banana"), &g10) && ok(Some("banana"), &None));
    }
}
