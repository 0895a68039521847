//! The parser's known answers and refusals.

use super::*;

fn bits(values: &[u32]) -> u64 {
    values.iter().fold(0, |b, v| b | (1 << v))
}

#[test]
fn star_list_range_and_steps() {
    let f = parse("*/15 0,12 10-12 */4 1-5/2").unwrap();
    assert_eq!(f.seconds, 1);
    assert_eq!(f.minutes, bits(&[0, 15, 30, 45]));
    assert_eq!(f.hours, bits(&[0, 12]));
    assert_eq!(f.days_of_month, bits(&[10, 11, 12]));
    assert_eq!(f.months, bits(&[1, 5, 9]));
    assert_eq!(f.days_of_week, bits(&[1, 3, 5]));
    assert!(f.wildcard_time);
    assert!(!f.dom_star && !f.dow_star);
}

#[test]
fn ranged_steps_start_at_the_range_start() {
    assert_eq!(
        parse("10-50/20 * * * *").unwrap().minutes,
        bits(&[10, 30, 50])
    );
}

#[test]
fn six_fields_lead_with_seconds() {
    let f = parse("*/20 0 9 * * *").unwrap();
    assert!(f.has_seconds);
    assert_eq!(f.seconds, bits(&[0, 20, 40]));
    assert_eq!(f.minutes, 1);
    assert_eq!(f.hours, bits(&[9]));
    assert!(!f.wildcard_time);
}

#[test]
fn names_in_any_case_and_in_ranges() {
    let f = parse("0 0 * JAN,jul Mon-FRI").unwrap();
    assert_eq!(f.months, bits(&[1, 7]));
    assert_eq!(f.days_of_week, bits(&[1, 2, 3, 4, 5]));
    assert_eq!(parse("0 0 * * sun").unwrap().days_of_week, 1);
}

#[test]
fn weekday_seven_is_sunday() {
    assert_eq!(parse("0 0 * * 7").unwrap().days_of_week, bits(&[0]));
    assert_eq!(parse("0 0 * * 5-7").unwrap().days_of_week, bits(&[0, 5, 6]));
    assert_eq!(parse("0 0 * * 0").unwrap().days_of_week, bits(&[0]));
}

#[test]
fn an_upper_sun_is_day_seven() {
    assert_eq!(
        parse("0 0 * * sat-sun").unwrap().days_of_week,
        bits(&[0, 6])
    );
    assert_eq!(
        parse("0 0 * * thu-sun").unwrap().days_of_week,
        bits(&[0, 4, 5, 6])
    );
    assert_eq!(
        parse("0 0 * * THU-Sun").unwrap(),
        parse("0 0 * * 4-7").unwrap()
    );
    assert_eq!(
        parse("0 0 * * mon-sun/2").unwrap().days_of_week,
        bits(&[0, 1, 3, 5])
    );
    // Sunday through Sunday is Sunday, not the whole week.
    assert_eq!(parse("0 0 * * sun-sun").unwrap().days_of_week, bits(&[0]));
    assert_eq!(
        parse("0 0 * * sun-sat").unwrap().days_of_week,
        bits(&[0, 1, 2, 3, 4, 5, 6])
    );
}

#[test]
fn backwards_ranges_suggest_the_wrapped_list_in_every_field() {
    let cases = [
        ("* * 22-5 * * *", "hour: '22-5'", "'22-23,0-5'"),
        ("50-10 * * * *", "minute: '50-10'", "'50-59,0-10'"),
        ("59-1 * * * *", "minute: '59-1'", "'59,0-1'"),
        ("50-10/7 * * * *", "minute: '50-10/7'", "'50-59/7,4'"),
        ("50-20/7 * * * *", "minute: '50-20/7'", "'50-59/7,4-20/7'"),
        ("50-3/7 * * * *", "minute: '50-3/7'", "'50-59/7'"),
        ("22-5/2 * * * *", "minute: '22-5/2'", "'22-59/2,0-5/2'"),
        ("45-15 * * * * *", "second: '45-15'", "'45-59,0-15'"),
        ("0 0 25-3 * *", "day-of-month: '25-3'", "'25-31,1-3'"),
        ("0 0 1 11-2 *", "month: '11-2'", "'11-12,1-2'"),
        ("0 0 1 nov-feb *", "month: 'nov-feb'", "'nov-dec,jan-feb'"),
        ("0 0 1 DEC-jan *", "month: 'DEC-jan'", "'dec,jan'"),
        ("0 0 * * fri-mon", "day-of-week: 'fri-mon'", "'fri-sun,mon'"),
        (
            "0 0 * * fri-tue/2",
            "day-of-week: 'fri-tue/2'",
            "'fri-sun/2,tue'",
        ),
        ("0 0 * * 5-1", "day-of-week: '5-1'", "'5-7,1'"),
        ("0 0 * * 6-0", "day-of-week: '6-0'", "'6-7'"),
        ("0 0 * * sat-2", "day-of-week: 'sat-2'", "'sat-sun,mon-tue'"),
    ];
    for (expr, token, suggestion) in cases {
        let err = parse(expr).expect_err(expr).to_string();
        assert!(err.contains(token), "{expr}: {err}");
        assert!(err.contains("runs backwards"), "{expr}: {err}");
        assert!(
            err.contains(&format!("write {suggestion}")),
            "{expr}: {err}"
        );
    }
}

#[test]
fn every_wrapped_suggestion_means_the_values_the_user_meant() {
    // Walking from the start with the step, round the end of the field,
    // up to the end: the suggestion, parsed, is exactly those values.
    for (field, pos, cycle, min) in [
        (Field::Minute, 0, 60, 0),
        (Field::Hour, 1, 24, 0),
        (Field::DayOfMonth, 2, 31, 1),
        (Field::Month, 3, 12, 1),
        (Field::DayOfWeek, 4, 7, 0),
    ] {
        let (_, max) = field.bounds();
        for lo in min..=max {
            for hi in min..lo {
                for step in [1, 2, 3, 5, 7] {
                    let item = format!("{lo}-{hi}/{step}");
                    let mut fields = ["0", "0", "1", "1", "*"];
                    fields[pos] = &item;
                    let err = parse(&fields.join(" ")).expect_err(&item).to_string();
                    let Some(suggested) = err
                        .split("write '")
                        .nth(1)
                        .and_then(|rest| rest.split('\'').next())
                    else {
                        panic!("{item}: no suggestion in {err}");
                    };
                    let mut expected = 0u64;
                    let mut v = lo;
                    let mut wrapped = false;
                    loop {
                        let value = if field == Field::DayOfWeek { v % 7 } else { v };
                        expected |= 1 << value;
                        let next = v + step;
                        if !wrapped && next > max {
                            wrapped = true;
                            v = next - cycle;
                        } else {
                            v = next;
                        }
                        if wrapped && v > hi {
                            break;
                        }
                    }
                    let got = parse_field(field, suggested).expect(suggested);
                    let got = if field == Field::DayOfWeek && got & (1 << 7) != 0 {
                        (got & !(1 << 7)) | 1
                    } else {
                        got
                    };
                    assert_eq!(got, expected, "{item} -> {suggested}");
                }
            }
        }
    }
}

#[test]
fn a_huge_step_ends_the_range_instead_of_overflowing() {
    assert_eq!(
        parse("59-59/4294967295 * * * *").unwrap().minutes,
        bits(&[59])
    );
}

#[test]
fn single_value_range_is_that_value() {
    // croniter reads 5-5 as the whole field; cron reads it as 5.
    assert_eq!(parse("5-5 * * * *").unwrap().minutes, bits(&[5]));
}

#[test]
fn star_flags_follow_vixie() {
    let f = parse("0 0 */2 * 1").unwrap();
    assert!(f.dom_star);
    assert!(!f.dow_star);
    let f = parse("0 0 13 * 5").unwrap();
    assert!(!f.dom_star && !f.dow_star);
}

#[test]
fn macros_expand() {
    for (m, e) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
    ] {
        assert_eq!(parse(m).unwrap(), parse(e).unwrap(), "{m}");
    }
}

#[test]
fn errors_name_field_and_problem() {
    let cases = [
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
        ("0 0 1 jab *", "month: unknown month name 'jab'"),
        ("0 0 * * mun", "day-of-week: unknown day-of-week name 'mun'"),
        ("* * * *", "expected 5 or 6 fields, got 4"),
        ("0 0 0 1 1 * 2026", "got 7: a year field is not supported"),
        ("*/0 * * * *", "a step of 0"),
        ("5/15 * * * *", "write '5-59/15' or '*/15'"),
        ("30-10 * * * *", "runs backwards"),
        ("30-10 * * * *", "write '30-59,0-10' for 30 round to 10"),
        ("1,,2 * * * *", "empty list item"),
        ("0 0 ? * *", "Quartz"),
        ("0 0 L * *", "'L' and 'W'"),
        ("0 0 * * 1#2", "nth-weekday"),
        ("@reboot", "@reboot"),
        ("@often", "unknown macro '@often'"),
        ("", "empty"),
        ("a * * * *", "minute: 'a': not a number"),
    ];
    for (expr, expected) in cases {
        let err = parse(expr).expect_err(expr).to_string();
        assert!(err.contains(expected), "{expr:?}: {err}");
    }
}
