//! Redaction of personal data that visitors' browsers leak into URLs, titles and messages: e-mail
//! addresses, phone numbers and payment card numbers. The redacted text keeps its shape (`[email]`,
//! `[phone]`, `[card]` stand where the value was) so that pages still group by path.
//!
//! Rules:
//! * **E-mail**: `local@domain.tld`, where `@` may be percent-encoded as `%40` (URLs) and the local part
//!   may hold `%xx` escapes and `+`. Replaced by `[email]`.
//! * **Card**: 13–19 digits, optionally split by single spaces or dashes, starting with 2–6 (the
//!   issuer ranges of Visa, Mastercard, Amex, Discover, JCB, UnionPay, Diners) and passing the Luhn
//!   check. Replaced by `[card]`. The leading-digit rule keeps epoch-millisecond timestamps (they start
//!   with 1) out.
//! * **Phone**: 9–15 digits (E.164 allows 15) that *look* like a phone number: either they start with
//!   `+` (or `%2B`), or the digits are split by phone separators (space, `-`, `.`, parentheses, or
//!   their URL forms `%20`, `+`, `%28`, `%29`). Replaced by `[phone]`. `/` is not a separator: in
//!   paths it splits ids. A plain run of digits without a leading `+` is not a phone, so
//!   `/product/123456789` keeps its id (a plain 13–19 digit run can still be a card, above).
//!   Not phones either: ISO dates with a time (`2024-01-15 12:30`), dotted IPv4 addresses, and numbers
//!   grouped in thousands (`1.234.567.890`).
//!
//! Digits glued to letters (`abc123456789`) are never a phone or card: they are tokens or ids.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Shortest phone number we redact. Shorter runs are too often prices, ids or dates.
const MIN_PHONE_DIGITS: usize = 9;
const MAX_PHONE_DIGITS: usize = 15;
const MIN_CARD_DIGITS: usize = 13;
const MAX_CARD_DIGITS: usize = 19;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // The domain needs a dot and a 2+ letter TLD, so `user@localhost` or `@handle` (social handles in
    // titles) are not redacted.
    compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
});

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    // A candidate: an optional international prefix, then digits with at most three separator tokens
    // between any two digits. Whether it is a phone, a card or neither is decided in code, where the
    // digits can be counted and Luhn-checked.
    compile(r"(?:(?:\+|%2[Bb])(?: |%20)?)?(?:\(|%28)?\d(?:(?:[ \-.()\x{a0}]|%20|%28|%29|\+){0,3}\d)*")
});

fn compile(pattern: &str) -> Regex {
    // The patterns are constants checked by the tests below, so a failure here is a programming error
    // caught before release, never something an input can trigger.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("constant PII pattern compiles")
}

/// Redacts e-mail addresses, phone numbers and card numbers. Text that cannot hold any of them (no `@`,
/// no `%40`, fewer than 9 digits) is returned borrowed without running a regex.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let has_at = text.contains('@') || text.contains("%40");
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    if !has_at && digits < MIN_PHONE_DIGITS {
        return Cow::Borrowed(text);
    }
    let text = if has_at { EMAIL.replace_all(text, "[email]") } else { Cow::Borrowed(text) };
    if digits < MIN_PHONE_DIGITS {
        return text;
    }
    match redact_numbers(&text) {
        Some(redacted) => Cow::Owned(redacted),
        None => text,
    }
}

/// What a numeric candidate turned out to be.
#[derive(Debug, PartialEq)]
enum NumberKind {
    Phone,
    Card,
    Other,
}

/// Replaces phone and card candidates; `None` when nothing was replaced, so the caller can keep its
/// borrowed text.
fn redact_numbers(text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied_to = 0;
    for m in NUMBER.find_iter(text) {
        let (mut start, end) = (m.start(), m.end());
        if glued_to_word(text[..start].chars().next_back()) {
            // In `call+0151+1234+5678` the `+` is a form-encoded space, not an international prefix:
            // judge what follows it on its own.
            let Some(prefix) = ["+", "%2B", "%2b"].into_iter().find(|p| m.as_str().starts_with(p)) else {
                continue;
            };
            start += prefix.len();
        }
        if glued_to_word(text[end..].chars().next()) {
            continue;
        }
        let label = match classify(&text[start..end]) {
            NumberKind::Phone => "[phone]",
            NumberKind::Card => "[card]",
            NumberKind::Other => continue,
        };
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(&text[copied_to..start]);
        buf.push_str(label);
        copied_to = end;
    }
    let mut buf = out?;
    buf.push_str(&text[copied_to..]);
    Some(buf)
}

fn glued_to_word(neighbour: Option<char>) -> bool {
    neighbour.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn classify(candidate: &str) -> NumberKind {
    // Undo the URL forms first so that the digits of `%20` or `%2B` are not counted as phone digits.
    let plain =
        candidate.replace("%20", " ").replace("%2B", "+").replace("%2b", "+").replace("%28", "(").replace("%29", ")");
    let (international, body) = match plain.strip_prefix('+') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, plain.as_str()),
    };
    let digits: Vec<u8> = body.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    let separators: Vec<char> = body.chars().filter(|c| !c.is_ascii_digit()).collect();

    if !international && is_card(&digits, &separators) {
        return NumberKind::Card;
    }
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len()) {
        return NumberKind::Other;
    }
    if international {
        return NumberKind::Phone;
    }
    if separators.is_empty() || looks_like_date_time(body) || looks_like_ipv4(body) || looks_like_thousands(body) {
        return NumberKind::Other;
    }
    NumberKind::Phone
}

fn is_card(digits: &[u8], separators: &[char]) -> bool {
    (MIN_CARD_DIGITS..=MAX_CARD_DIGITS).contains(&digits.len())
        && separators.iter().all(|c| matches!(c, ' ' | '-'))
        && matches!(digits.first(), Some(2..=6))
        && luhn_valid(digits)
}

/// The Luhn checksum every payment card number carries.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `2024-01-15 12:30`, `2024-01-15-1234`: a date first, whatever follows.
fn looks_like_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && matches!(b[4], b'-' | b'/' | b'.')
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b[4]
        && b[8..10].iter().all(u8::is_ascii_digit)
}

fn looks_like_ipv4(s: &str) -> bool {
    let groups: Vec<&str> = s.split('.').collect();
    groups.len() == 4 && groups.iter().all(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()))
}

/// `1.234.567.890` or `1 234 567 890`: a number written with thousands separators.
fn looks_like_thousands(s: &str) -> bool {
    let Some(sep) = s.chars().find(|c| !c.is_ascii_digit()) else {
        return false;
    };
    if !matches!(sep, '.' | ' ' | '\u{a0}') {
        return false;
    }
    let mut groups = s.split(sep);
    let first_ok = groups.next().is_some_and(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()));
    first_ok && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        for text in ["Pricing — Footfall", "/blog/2024/01/hello-world", "page=2&sort=price", "Order 12345678", ""] {
            assert!(matches!(scrub(text), Cow::Borrowed(_)), "{text}");
        }
        // Candidates that turn out not to be PII are still borrowed.
        assert!(matches!(scrub("/product/123456789"), Cow::Borrowed(_)));
    }

    #[test]
    fn emails() {
        let cases = [
            ("email=john.doe@example.com&x=1", "email=[email]&x=1"),
            ("email=john.doe%40example.com", "email=[email]"),
            ("to=jane%2Bnews%40mail.example.co.uk&a=b", "to=[email]&a=b"),
            ("/users/Max.Mustermann@web.de/settings", "/users/[email]/settings"),
            ("Contact first.last+tag@sub.example.org today", "Contact [email] today"),
            // Not e-mail: handles and hosts without a TLD.
            ("Follow @footfall on X", "Follow @footfall on X"),
            ("ssh git@localhost", "ssh git@localhost"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub(input), expected, "{input}");
        }
    }

    #[test]
    fn phones() {
        let cases = [
            ("call +49 30 12345678", "call [phone]"),
            ("tel=%2B4915112345678", "tel=[phone]"),
            ("tel=%2B49%2030%201234567", "tel=[phone]"),
            ("phone=+1-555-123-4567", "phone=[phone]"),
            ("(555) 123-4567 ext", "[phone] ext"),
            ("030 1234 5678", "[phone]"),
            ("0151-12345678", "[phone]"),
            ("06.12.34.56.78", "[phone]"),
            ("q=call+0151+1234+5678", "q=call+[phone]"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub(input), expected, "{input}");
        }
    }

    #[test]
    fn ids_and_other_numbers_stay() {
        for text in [
            "/product/123456789",
            // 13 digits failing Luhn: an order number, neither card nor (without `+`) phone.
            "/order/4915112345679",
            "id=1732543200000",
            "session=abc1234567890",
            "/p/12345678",
            "at 2024-01-15 12:30:45",
            "from 192.168.100.200",
            "population 1.234.567.890",
            "v=1.2.3",
            "/archive/2024/01/15/12",
            "x=12345678901234567890123",
        ] {
            assert_eq!(scrub(text), text, "{text}");
        }
    }

    #[test]
    fn cards() {
        let cases = [
            ("card=4111111111111111", "card=[card]"),
            ("4111 1111 1111 1111", "[card]"),
            ("5555-5555-5555-4444 exp", "[card] exp"),
            ("amex 378282246310005", "amex [card]"),
            // Fails Luhn: an id, kept.
            ("card=4111111111111112", "card=4111111111111112"),
            // A Luhn-valid 13-digit id is indistinguishable from a card number: redacted.
            ("/order/4915112345678", "/order/[card]"),
            // Luhn-valid but starting with 1 (a millisecond timestamp range): kept.
            ("t=1000000000009", "t=1000000000009"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub(input), expected, "{input}");
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
    }

    #[test]
    fn several_kinds_in_one_text() {
        assert_eq!(
            scrub("Name: a@b.io, tel +44 20 7946 0958, card 4242 4242 4242 4242, order 987654321"),
            "Name: [email], tel [phone], card [card], order 987654321"
        );
    }
}
