//! Deploy windows (contract section 10): whether an environment may change at an instant and,
//! when it may not, until when. `apply`, `promote`, the agent, `plan` and `audit` all ask this
//! one function, so they cannot disagree about a freeze.
//!
//! Pure on purpose: `now` is a parameter — the caller reads the engine's clock, as the lock does,
//! so a laptop with a wrong clock cannot walk past a freeze — and nothing here reads a clock, a
//! file or the network (the time zone rules are compiled into the binary by jiff's bundled
//! database). That also makes every case testable at any instant.
//!
//! The semantics are Argo CD's sync windows: a window is active at `now` when one of its cron
//! starts `s`, read as wall-clock times in the environment's zone, has `s <= now < s + duration`.
//! The duration is elapsed time, so across a daylight-saving change a window keeps its length
//! and its end moves on the wall clock. Deny wins over allow; where allow entries exist, changes
//! happen only inside one; without entries an environment is always open.

use crate::manifest::{Environment, MAX_WINDOW, Window, WindowKind};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// How far ahead `until` is looked for; a hold longer than this has no `until`.
pub const HORIZON_DAYS: i64 = 366;

/// How many window edges the search for `until` passes at most. A hold renewed every minute
/// would take half a million of them to cover the horizon; past this many (more than two months
/// of such a schedule, far beyond any real one) it is taken as never opening.
const MAX_STEPS: u32 = 100_000;

/// Whether changes may happen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Changes may happen. `allow` is the allow window they happen inside, as written (`None`
    /// when the environment has no allow entry).
    Open { allow: Option<String> },
    /// Changes are held.
    Held(Held),
}

impl Verdict {
    pub fn is_open(&self) -> bool {
        matches!(self, Verdict::Open { .. })
    }
}

/// Why changes are held, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub cause: Cause,
    /// The entry that holds, as written: `deny 0 16 * * FRI for 64h`. Outside the allow
    /// windows, the allow entry that opens next (all of them, `; `-separated, if none opens
    /// within the horizon).
    pub by: String,
    /// When changes may next happen: the end of the deny window (and of the deny windows that
    /// overlap or follow it without a gap), or the start of the next allow window outside any
    /// deny. `None` when that is not within `HORIZON_DAYS` (or not within `MAX_STEPS` window
    /// edges).
    pub until: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Inside a deny window.
    Deny,
    /// The environment has allow entries and none is active.
    OutsideAllow,
}

impl Held {
    /// For messages: `held by window deny 0 16 * * FRI for 64h until
    /// 2026-12-14T08:00:00+01:00[Europe/Paris]`, or `held outside window allow 0 7 * * MON-FRI
    /// for 12h until …`.
    pub fn message(&self, tz: &TimeZone) -> String {
        let how = match self.cause {
            Cause::Deny => "held by window",
            Cause::OutsideAllow => "held outside window",
        };
        format!("{how} {} {}", self.by, until_text(self.until, tz))
    }
}

/// `until 2026-12-14T08:00:00+01:00[Europe/Paris]`: the instant in the environment's zone, with
/// its offset and the zone's name; `with no opening within 366 days` without one.
pub fn until_text(until: Option<Timestamp>, tz: &TimeZone) -> String {
    match until {
        Some(t) => format!("until {}", format_instant(t, tz)),
        None => format!("with no opening within {HORIZON_DAYS} days"),
    }
}

/// An instant as a wall-clock time of `tz`, whole seconds, RFC 9557:
/// `2026-12-14T08:00:00+01:00[Europe/Paris]` (`…+00:00[UTC]` in UTC).
pub fn format_instant(t: Timestamp, tz: &TimeZone) -> String {
    let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
    whole.to_zoned(tz.clone()).to_string()
}

/// The verdict for an environment at `now` (the engine's clock).
pub fn environment_verdict(env: &Environment, now: Timestamp) -> Verdict {
    verdict(&env.windows, &env.time_zone(), now)
}

/// The verdict for `windows` read in `tz`, at `now`.
pub fn verdict(windows: &[Window], tz: &TimeZone, now: Timestamp) -> Verdict {
    let has_allow = windows.iter().any(|w| w.kind == WindowKind::Allow);
    if let Some(deny) = windows
        .iter()
        .find(|w| w.kind == WindowKind::Deny && active_until(w, tz, now).is_some())
    {
        return Verdict::Held(Held {
            cause: Cause::Deny,
            by: deny.describe(),
            until: next_open(windows, tz, now),
        });
    }
    if !has_allow {
        return Verdict::Open { allow: None };
    }
    if let Some(allow) = active_allow(windows, tz, now) {
        return Verdict::Open {
            allow: Some(allow.describe()),
        };
    }
    let until = next_open(windows, tz, now);
    let by = match until.and_then(|t| active_allow(windows, tz, t)) {
        Some(w) => w.describe(),
        None => windows
            .iter()
            .filter(|w| w.kind == WindowKind::Allow)
            .map(Window::describe)
            .collect::<Vec<_>>()
            .join("; "),
    };
    Verdict::Held(Held {
        cause: Cause::OutsideAllow,
        by,
        until,
    })
}

/// The first allow window (manifest order) active at `t`.
fn active_allow<'w>(windows: &'w [Window], tz: &TimeZone, t: Timestamp) -> Option<&'w Window> {
    windows
        .iter()
        .find(|w| w.kind == WindowKind::Allow && active_until(w, tz, t).is_some())
}

/// When `w` ends if it is active at `t`: its latest start `s <= t`, if `t < s + duration`. The
/// latest start has the latest end (one duration for all), so no earlier start can matter.
fn active_until(w: &Window, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
    let start = w
        .cron
        .find_previous_occurrence(&t.to_zoned(tz.clone()), true)
        .ok()?
        .timestamp();
    let end = start.checked_add(length(w)).ok()?;
    (t < end).then_some(end)
}

/// The first start of `w` after `t`.
fn next_start(w: &Window, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
    w.cron
        .find_next_occurrence(&t.to_zoned(tz.clone()), false)
        .ok()
        .map(|z| z.timestamp())
}

fn length(w: &Window) -> SignedDuration {
    // Decoding keeps durations within a week; a longer one would only look further back.
    SignedDuration::try_from(w.duration.min(MAX_WINDOW)).unwrap_or(SignedDuration::ZERO)
}

/// The first instant from `now` on at which changes may happen, within the horizon. It jumps
/// from event to event rather than stepping through time: past the end of every active deny
/// window (a deny that starts at or before that end is active there, so adjacent and
/// overlapping ones chain), and, outside the allow windows, to the next allow start.
fn next_open(windows: &[Window], tz: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    let limit = now
        .checked_add(SignedDuration::from_hours(24 * HORIZON_DAYS))
        .ok()?;
    let has_allow = windows.iter().any(|w| w.kind == WindowKind::Allow);
    let mut t = now;
    for _ in 0..MAX_STEPS {
        if t > limit {
            return None;
        }
        let deny_end = windows
            .iter()
            .filter(|w| w.kind == WindowKind::Deny)
            .filter_map(|w| active_until(w, tz, t))
            .max();
        if let Some(end) = deny_end {
            t = end;
            continue;
        }
        if has_allow && active_allow(windows, tz, t).is_none() {
            t = windows
                .iter()
                .filter(|w| w.kind == WindowKind::Allow)
                .filter_map(|w| next_start(w, tz, t))
                .min()?;
            continue;
        }
        return Some(t);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::decode::{parse_schedule, parse_window_duration};

    fn w(kind: WindowKind, schedule: &str, duration: &str) -> Window {
        Window {
            kind,
            schedule: schedule.to_string(),
            cron: parse_schedule(schedule).unwrap(),
            duration: parse_window_duration(duration).unwrap(),
            duration_text: duration.to_string(),
            span: Default::default(),
        }
    }
    fn deny(schedule: &str, duration: &str) -> Window {
        w(WindowKind::Deny, schedule, duration)
    }
    fn allow(schedule: &str, duration: &str) -> Window {
        w(WindowKind::Allow, schedule, duration)
    }
    fn paris() -> TimeZone {
        jiff::tz::db().get("Europe/Paris").unwrap()
    }
    /// A wall-clock time in Paris: `2026-12-12T12:00`.
    fn at(civil: &str) -> Timestamp {
        civil
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(paris())
            .unwrap()
            .timestamp()
    }
    fn held(v: &Verdict) -> &Held {
        match v {
            Verdict::Held(h) => h,
            Verdict::Open { .. } => panic!("expected held, got {v:?}"),
        }
    }
    fn until(v: &Verdict) -> String {
        format_instant(held(v).until.expect("an until"), &paris())
    }

    // 2026-12-07 is a Monday.

    #[test]
    fn the_weekend_freeze_holds_saturday_noon_and_opens_monday_at_eight() {
        let ws = [deny("0 16 * * FRI", "64h")];
        let v = verdict(&ws, &paris(), at("2026-12-12T12:00"));
        assert_eq!(held(&v).cause, Cause::Deny);
        assert_eq!(held(&v).by, "deny 0 16 * * FRI for 64h");
        assert_eq!(until(&v), "2026-12-14T08:00:00+01:00[Europe/Paris]");
        assert_eq!(
            held(&v).message(&paris()),
            "held by window deny 0 16 * * FRI for 64h until 2026-12-14T08:00:00+01:00[Europe/Paris]"
        );
        // The edges: the start is inside, the end is not.
        assert!(verdict(&ws, &paris(), at("2026-12-11T15:59:59")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-12-11T16:00")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-12-14T07:59:59")).is_open());
        assert_eq!(
            verdict(&ws, &paris(), at("2026-12-14T08:00")),
            Verdict::Open { allow: None }
        );
    }

    #[test]
    fn office_hours_open_on_tuesday_morning_and_hold_tuesday_evening_until_wednesday() {
        let ws = [allow("0 7 * * MON-FRI", "12h")];
        assert_eq!(
            verdict(&ws, &paris(), at("2026-12-08T10:00")),
            Verdict::Open {
                allow: Some("allow 0 7 * * MON-FRI for 12h".into())
            }
        );
        let v = verdict(&ws, &paris(), at("2026-12-08T20:00"));
        assert_eq!(held(&v).cause, Cause::OutsideAllow);
        assert_eq!(held(&v).by, "allow 0 7 * * MON-FRI for 12h");
        assert_eq!(until(&v), "2026-12-09T07:00:00+01:00[Europe/Paris]");
        assert_eq!(
            held(&v).message(&paris()),
            "held outside window allow 0 7 * * MON-FRI for 12h until 2026-12-09T07:00:00+01:00[Europe/Paris]"
        );
        // Friday evening waits for Monday.
        let v = verdict(&ws, &paris(), at("2026-12-11T19:00"));
        assert_eq!(until(&v), "2026-12-14T07:00:00+01:00[Europe/Paris]");
    }

    #[test]
    fn deny_wins_over_an_overlapping_allow() {
        let ws = [allow("0 7 * * *", "12h"), deny("0 12 * * *", "2h")];
        let v = verdict(&ws, &paris(), at("2026-12-08T13:00"));
        assert_eq!(held(&v).cause, Cause::Deny);
        assert_eq!(held(&v).by, "deny 0 12 * * * for 2h");
        // The allow window is still open when the deny ends.
        assert_eq!(until(&v), "2026-12-08T14:00:00+01:00[Europe/Paris]");
        // The weekend freeze ends inside Monday's allow window, at its own end.
        let ws = [allow("0 7 * * *", "12h"), deny("0 16 * * FRI", "64h")];
        let v = verdict(&ws, &paris(), at("2026-12-13T10:00"));
        assert_eq!(held(&v).cause, Cause::Deny);
        assert_eq!(until(&v), "2026-12-14T08:00:00+01:00[Europe/Paris]");
        // And when it ends outside every allow window, the next allow start is the opening.
        let ws = [allow("0 9 * * *", "8h"), deny("0 16 * * FRI", "64h")];
        let v = verdict(&ws, &paris(), at("2026-12-13T10:00"));
        assert_eq!(until(&v), "2026-12-14T09:00:00+01:00[Europe/Paris]");
    }

    #[test]
    fn a_day_matches_if_its_day_of_month_or_its_weekday_does() {
        let ws = [deny("0 0 1 * MON", "1h")];
        // The 1st (a Tuesday), every Monday, and no other day.
        assert!(!verdict(&ws, &paris(), at("2026-12-01T00:30")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-12-07T00:30")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-12-14T00:30")).is_open());
        assert!(verdict(&ws, &paris(), at("2026-12-02T00:30")).is_open());
        assert!(verdict(&ws, &paris(), at("2026-12-08T00:30")).is_open());
        // One field restricted: that field alone decides.
        let ws = [deny("0 0 * * MON", "1h")];
        assert!(verdict(&ws, &paris(), at("2026-12-01T00:30")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-12-07T00:30")).is_open());
        let ws = [deny("0 0 1 * *", "1h")];
        assert!(!verdict(&ws, &paris(), at("2026-12-01T00:30")).is_open());
        assert!(verdict(&ws, &paris(), at("2026-12-07T00:30")).is_open());
    }

    #[test]
    fn names_ranges_lists_and_steps_read_as_cron_reads_them() {
        // December only, every other hour from 8 to 18 on Monday and Wednesday.
        let ws = [deny("0 8-18/2 * dec mon,WED", "30m")];
        assert!(!verdict(&ws, &paris(), at("2026-12-07T10:15")).is_open());
        assert!(verdict(&ws, &paris(), at("2026-12-07T11:15")).is_open());
        assert!(verdict(&ws, &paris(), at("2026-12-08T10:15")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-12-09T18:15")).is_open());
        assert!(verdict(&ws, &paris(), at("2027-01-04T10:15")).is_open());
        // Sunday is 0 and 7.
        for sunday in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun"] {
            let ws = [deny(sunday, "2d 16h")];
            let v = verdict(&ws, &paris(), at("2026-12-13T00:30"));
            assert_eq!(
                until(&v),
                "2026-12-15T16:00:00+01:00[Europe/Paris]",
                "{sunday}"
            );
            assert!(
                verdict(&ws, &paris(), at("2026-12-12T23:59")).is_open(),
                "{sunday}"
            );
        }
    }

    #[test]
    fn durations_are_elapsed_time_across_a_daylight_saving_change() {
        // Paris leaves summer time on Sunday 2026-10-25: the weekend freeze that starts on Friday
        // at 16:00 CEST lasts 64 hours, so it ends at 07:00 CET on Monday, not 08:00.
        let ws = [deny("0 16 * * FRI", "64h")];
        let v = verdict(&ws, &paris(), at("2026-10-24T12:00"));
        assert_eq!(until(&v), "2026-10-26T07:00:00+01:00[Europe/Paris]");
        // Paris enters summer time on Sunday 2027-03-28 (02:00 -> 03:00): a 2h allow window
        // from 01:00 ends at 04:00 on the wall clock that day, at 03:00 the day before.
        let ws = [allow("0 1 * * *", "2h")];
        assert!(verdict(&ws, &paris(), at("2027-03-28T03:30")).is_open());
        assert!(!verdict(&ws, &paris(), at("2027-03-28T04:00")).is_open());
        assert!(!verdict(&ws, &paris(), at("2027-03-27T03:30")).is_open());
        // Schedules are wall-clock times: 16:00 on Friday is 16:00 in summer and in winter.
        let ws = [deny("0 16 * * FRI", "1h")];
        assert!(!verdict(&ws, &paris(), at("2026-10-23T16:30")).is_open());
        assert!(!verdict(&ws, &paris(), at("2026-10-30T16:30")).is_open());
        assert!(verdict(&ws, &paris(), at("2026-10-30T17:30")).is_open());
    }

    #[test]
    fn a_start_in_the_spring_gap_still_happens_once_that_day() {
        // 02:30 does not exist on 2027-03-28 in Paris; the window starts when the clock
        // reaches that time, right after the gap (03:00 CEST), and lasts its hour.
        let ws = [deny("30 2 * * *", "1h")];
        let v = verdict(&ws, &paris(), at("2027-03-28T03:10"));
        assert_eq!(until(&v), "2027-03-28T04:00:00+02:00[Europe/Paris]");
        assert!(verdict(&ws, &paris(), at("2027-03-28T04:00")).is_open());
        // Autumn's repeated hour: 02:30 happens twice on the wall clock, the window once.
        let v = verdict(&ws, &paris(), at("2026-10-25T02:45"));
        // 02:45 is read as its first occurrence (summer time), inside the window.
        assert_eq!(until(&v), "2026-10-25T02:30:00+01:00[Europe/Paris]");
    }

    #[test]
    fn no_windows_is_always_open() {
        assert_eq!(
            verdict(&[], &paris(), at("2026-12-12T12:00")),
            Verdict::Open { allow: None }
        );
        assert_eq!(
            verdict(&[], &TimeZone::UTC, Timestamp::UNIX_EPOCH),
            Verdict::Open { allow: None }
        );
    }

    #[test]
    fn a_window_started_six_days_ago_for_seven_days_is_still_active() {
        // From the 1st at 09:00 for 7 days: 6 days and 23 hours later it still holds.
        let ws = [deny("0 9 1 * *", "7d")];
        let v = verdict(&ws, &paris(), at("2026-12-07T08:00"));
        assert_eq!(until(&v), "2026-12-08T09:00:00+01:00[Europe/Paris]");
        assert!(verdict(&ws, &paris(), at("2026-12-08T09:00")).is_open());
        let ws = [deny("0 9 1 * *", "1w")];
        assert!(!verdict(&ws, &paris(), at("2026-12-08T08:59")).is_open());
    }

    #[test]
    fn adjacent_and_overlapping_deny_windows_chain_and_a_permanent_freeze_has_no_until() {
        // Friday 16:00 + 64h ends Monday 08:00, when a Monday freeze begins.
        let ws = [deny("0 16 * * FRI", "64h"), deny("0 8 * * MON", "4h")];
        let v = verdict(&ws, &paris(), at("2026-12-12T12:00"));
        assert_eq!(held(&v).by, "deny 0 16 * * FRI for 64h");
        assert_eq!(until(&v), "2026-12-14T12:00:00+01:00[Europe/Paris]");
        // Weekly for a week: always held, in UTC.
        let ws = [deny("0 9 * * MON", "7d")];
        let v = verdict(&ws, &TimeZone::UTC, at("2026-12-10T12:00"));
        assert_eq!(held(&v).until, None);
        assert_eq!(
            held(&v).message(&TimeZone::UTC),
            "held by window deny 0 9 * * MON for 7d with no opening within 366 days"
        );
        // In a zone with summer time, the week that loses an hour in autumn leaves one open:
        // 7 days of elapsed time from Monday 09:00 CEST end at 08:00 CET.
        let v = verdict(&ws, &paris(), at("2026-12-10T12:00"));
        assert_eq!(until(&v), "2027-11-01T08:00:00+01:00[Europe/Paris]");
    }

    #[test]
    fn an_allow_window_that_never_comes_within_the_horizon_has_no_until() {
        // Only on February 29th; the next is in 2028, beyond a year from 2026-12.
        let ws = [allow("0 0 29 2 *", "1h")];
        let v = verdict(&ws, &paris(), at("2026-12-12T12:00"));
        assert_eq!(held(&v).cause, Cause::OutsideAllow);
        assert_eq!(held(&v).until, None);
        assert_eq!(held(&v).by, "allow 0 0 29 2 * for 1h");
        // Within a year it is found.
        let v = verdict(&ws, &paris(), at("2027-12-12T12:00"));
        assert_eq!(until(&v), "2028-02-29T00:00:00+01:00[Europe/Paris]");
    }

    #[test]
    fn utc_is_the_default_zone_and_instants_name_their_zone() {
        let ws = [deny("0 16 * * FRI", "64h")];
        let now: Timestamp = "2026-12-12T12:00:00Z".parse().unwrap();
        let v = verdict(&ws, &TimeZone::UTC, now);
        assert_eq!(
            format_instant(held(&v).until.unwrap(), &TimeZone::UTC),
            "2026-12-14T08:00:00+00:00[UTC]"
        );
        let t: Timestamp = "2026-12-14T07:00:00.123456Z".parse().unwrap();
        assert_eq!(
            format_instant(t, &paris()),
            "2026-12-14T08:00:00+01:00[Europe/Paris]"
        );
    }

    #[test]
    fn a_hold_renewed_every_minute_ends_the_search() {
        // The worst case for the search: every edge is a minute apart, and none opens.
        let ws = [deny("* * * * *", "1m")];
        let v = verdict(&ws, &paris(), at("2026-12-12T12:00"));
        assert_eq!(held(&v).until, None);
        // Short windows that do open are still followed to their opening: the weekend's.
        let ws = [deny("* * * * MON-FRI", "1m")];
        let v = verdict(&ws, &paris(), at("2026-12-07T12:00"));
        assert_eq!(until(&v), "2026-12-12T00:00:00+01:00[Europe/Paris]");
    }
}
