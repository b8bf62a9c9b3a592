//! User agent → browser, OS and device type, with bot detection folded in.
//!
//! Parsing uses uap-core's `regexes.yaml` (bundled in `data/uap-core/`, Apache-2.0) through the
//! `ua-parser` crate. It runs a few hundred regexes per string, so results are cached per UA string:
//! real traffic has few distinct user agents, and a hit is a hash lookup.

use std::sync::Arc;

use quick_cache::sync::Cache;

use super::bots::{BotDetector, BotType};

/// uap-core's rule set, compiled into the binary so that nothing is fetched at run time.
const REGEXES_YAML: &str = include_str!("../../data/uap-core/regexes.yaml");

/// Longer user agents are cut here before parsing and caching: real ones are under 500 bytes, and
/// the cap bounds both regex time and cache memory against junk headers.
pub const MAX_USER_AGENT_LEN: usize = 1024;

/// Distinct user agents kept parsed.
pub const CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum UaError {
    #[error("bundled uap-core regexes.yaml does not parse: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("bundled uap-core regexes do not compile: {0}")]
    Compile(#[from] ua_parser::Error),
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientInfo {
    pub browser_name: Option<String>,
    /// `major.minor` (or `major` alone when the UA has no minor version).
    pub browser_version: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    /// desktop, mobile, tablet, tv, console, wearable, bot or other.
    pub device_type: Option<String>,
    pub is_bot: bool,
    /// See [`BotType`]; `None` for humans.
    pub bot_type: Option<String>,
}

/// The two uap-core rule lists we use. Its third list, `device_parsers` (634 of its ~1,200 regexes),
/// names phone *models*; we only need the device class, which browsers announce in plain tokens (see
/// [`device_type`]), and its "Spider" entries are covered by the bot detector. Skipping it halves
/// start-up and parse time.
#[derive(serde::Deserialize)]
struct Rules<'a> {
    #[serde(borrow)]
    user_agent_parsers: Vec<ua_parser::user_agent::Parser<'a>>,
    #[serde(borrow)]
    os_parsers: Vec<ua_parser::os::Parser<'a>>,
}

/// The uncached parser. Building it compiles the uap-core regexes: do it once at start-up.
pub struct UaParser {
    browsers: ua_parser::user_agent::Extractor<'static>,
    systems: ua_parser::os::Extractor<'static>,
    bots: BotDetector,
}

impl UaParser {
    pub fn new() -> Result<Self, UaError> {
        let rules: Rules<'static> = serde_yaml::from_str(REGEXES_YAML)?;
        let browsers = ua_parser::user_agent::Builder::new()
            .push_all(rules.user_agent_parsers)?
            .build()
            .map_err(ua_parser::Error::from)?;
        let systems = ua_parser::os::Builder::new()
            .push_all(rules.os_parsers)
            .map_err(ua_parser::Error::from)?
            .build()
            .map_err(ua_parser::Error::from)?;
        Ok(Self { browsers, systems, bots: BotDetector::default() })
    }

    /// Parses one user agent without the cache (benchmarks use this to measure a miss).
    pub fn parse(&self, user_agent: &str) -> ClientInfo {
        let ua = truncate(user_agent.trim(), MAX_USER_AGENT_LEN);
        let browser = self.browsers.extract(ua);
        let os = self.systems.extract(ua);
        let bot = self.bots.classify(ua);
        let lower = ua.to_ascii_lowercase();
        let is_bot = bot.is_some();
        let os_name = os.as_ref().map(|o| o.os.as_ref()).filter(|n| known(n));
        ClientInfo {
            browser_name: browser.as_ref().map(|b| b.family.as_ref()).filter(|n| known(n)).map(str::to_string),
            browser_version: browser.as_ref().and_then(|b| version(b.major, b.minor)),
            os_name: os_name.map(str::to_string),
            os_version: os
                .as_ref()
                .filter(|o| known(&o.os))
                .and_then(|o| version(o.major.as_deref(), o.minor.as_deref())),
            device_type: Some(if is_bot { "bot" } else { device_type(&lower, os_name) }.to_string()),
            is_bot,
            bot_type: if is_bot { Some(bot.unwrap_or(BotType::Other).as_str().to_string()) } else { None },
        }
    }
}

/// [`UaParser`] behind a bounded concurrent cache keyed by the (truncated) UA string.
pub struct CachedUaParser {
    parser: UaParser,
    cache: Cache<String, Arc<ClientInfo>>,
}

impl CachedUaParser {
    pub fn new(parser: UaParser, capacity: usize) -> Self {
        Self { parser, cache: Cache::new(capacity) }
    }

    pub fn parse(&self, user_agent: &str) -> Arc<ClientInfo> {
        let key = truncate(user_agent.trim(), MAX_USER_AGENT_LEN);
        if let Some(hit) = self.cache.get(key) {
            return hit;
        }
        // Two threads missing the same UA at once both parse it; the result is the same, and this
        // avoids holding a lock across the regex work.
        let info = Arc::new(self.parser.parse(key));
        self.cache.insert(key.to_string(), Arc::clone(&info));
        info
    }

    pub fn uncached(&self) -> &UaParser {
        &self.parser
    }

    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }
}

/// uap-core says "Other" when no rule matched.
fn known(name: &str) -> bool {
    !name.is_empty() && name != "Other"
}

fn version(major: Option<&str>, minor: Option<&str>) -> Option<String> {
    let major = major.filter(|m| !m.is_empty())?;
    Some(match minor.filter(|m| !m.is_empty()) {
        Some(minor) => format!("{major}.{minor}"),
        None => major.to_string(),
    })
}

/// Cuts at a char boundary at or below `max` bytes.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Device class of a human visitor. uap-core names device *models*, not classes, so the class comes
/// from tokens browsers put in their UA, most specific first: TVs and consoles run Android or Linux
/// and would otherwise count as phones or desktops.
fn device_type(lower: &str, os_name: Option<&str>) -> &'static str {
    const TV: &[&str] = &[
        "smart-tv",
        "smarttv",
        "smart tv",
        "hbbtv",
        "appletv",
        "apple tv",
        "googletv",
        "google tv",
        "android tv",
        "crkey",
        "roku",
        "web0s",
        "webos.tv",
        "netcast",
        "bravia",
        "philipstv",
        "tv safari",
        "; aft",
        "aquos",
        "viera",
        "tizen tv",
    ];
    const CONSOLE: &[&str] = &["playstation", "xbox", "nintendo"];
    const WEARABLE: &[&str] = &["watchos", "watch os", "wear os", "wearos", "galaxy watch"];
    const TABLET: &[&str] = &["ipad", "tablet", "kindle", "silk/", "playbook"];
    const MOBILE: &[&str] = &["mobi", "iphone", "ipod", "windows phone", "blackberry", "bb10", "opera mini", "kaios"];
    const DESKTOP_OS: &[&str] = &[
        "Windows",
        "Mac OS X",
        "macOS",
        "Linux",
        "Ubuntu",
        "Fedora",
        "Debian",
        "Chrome OS",
        "ChromeOS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
    ];
    const DESKTOP_TOKENS: &[&str] = &["windows nt", "macintosh", "x11;", "cros "];

    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(TV) {
        "tv"
    } else if has(CONSOLE) {
        "console"
    } else if has(WEARABLE) {
        "wearable"
    } else if has(TABLET) {
        "tablet"
    } else if has(MOBILE) {
        "mobile"
    } else if lower.contains("android") {
        // Android browsers put "Mobile" in phone UAs and leave it out on tablets.
        "tablet"
    } else if os_name.is_some_and(|os| DESKTOP_OS.contains(&os)) || has(DESKTOP_TOKENS) {
        "desktop"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static PARSER: LazyLock<UaParser> = LazyLock::new(|| UaParser::new().unwrap_or_else(|e| panic!("{e}")));

    /// (UA, browser, browser version, OS, OS version, device type, bot type)
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
    );

    const CASES: &[Case] = &[
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            Some("Chrome"), Some("120.0"), Some("Windows"), Some("10"), "desktop", None,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            Some("Mobile Safari"), Some("17.1"), Some("iOS"), Some("17.1"), "mobile", None,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
            Some("Samsung Internet"), Some("23.0"), Some("Android"), Some("13"), "tablet", None,
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            Some("Firefox"), Some("121.0"), Some("Ubuntu"), None, "desktop", None,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            Some("Edge"), Some("120.0"), Some("Windows"), Some("10"), "desktop", None,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 OPR/105.0.0.0",
            Some("Opera"), Some("105.0"), Some("Windows"), Some("10"), "desktop", None,
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            Some("Mobile Safari"), Some("16.6"), Some("iOS"), Some("16.6"), "tablet", None,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
            Some("Safari"), Some("17.2"), Some("Mac OS X"), Some("10.15"), "desktop", None,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            Some("Chrome Mobile"), Some("120.0"), Some("Android"), Some("14"), "mobile", None,
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            Some("Googlebot"), Some("2.1"), None, None, "bot", Some("crawler"),
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            Some("bingbot"), Some("2.0"), None, None, "bot", Some("crawler"),
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            Some("FacebookBot"), Some("1.1"), None, None, "bot", Some("social_bot"),
        ),
        ("curl/8.4.0", Some("curl"), Some("8.4"), None, None, "bot", Some("scraper")),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
            Some("HeadlessChrome"), Some("120.0"), Some("Linux"), None, "bot", Some("automation"),
        ),
        (
            "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            Some("UptimeRobot"), Some("2.0"), None, None, "bot", Some("monitoring"),
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            Some("GPTBot"), Some("1.2"), None, None, "bot", Some("ai_crawler"),
        ),
        (
            "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
            Some("Samsung Internet"), Some("4.0"), Some("Tizen"), Some("6.0"), "tv", None,
        ),
        (
            "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            Some("Safari"), Some("13.0"), None, None, "console", None,
        ),
        (
            "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
            Some("Firefox Mobile"), Some("121.0"), Some("Android"), Some("14"), "mobile", None,
        ),
        ("", None, None, None, None, "bot", Some("other")),
    ];

    #[test]
    fn real_user_agents() {
        for (ua, browser, bversion, os, osversion, device, bot) in CASES {
            let info = PARSER.parse(ua);
            let got = (
                info.browser_name.as_deref(),
                info.browser_version.as_deref(),
                info.os_name.as_deref(),
                info.os_version.as_deref(),
                info.device_type.as_deref(),
                info.bot_type.as_deref(),
            );
            assert_eq!(got, (*browser, *bversion, *os, *osversion, Some(*device), *bot), "{ua}");
            assert_eq!(info.is_bot, bot.is_some(), "{ua}");
        }
    }

    #[test]
    fn cache_returns_the_same_arc() {
        let cached = CachedUaParser::new(UaParser::new().unwrap_or_else(|e| panic!("{e}")), 16);
        let ua = CASES[0].0;
        let a = cached.parse(ua);
        let b = cached.parse(ua);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cached.cached_len(), 1);
        // Surrounding whitespace does not make a new entry.
        assert!(Arc::ptr_eq(&a, &cached.parse(&format!(" {ua} "))));
    }

    #[test]
    fn long_and_odd_user_agents_do_not_panic() {
        let long = "Mozilla/5.0 ".repeat(1000);
        let info = PARSER.parse(&long);
        assert!(info.device_type.is_some());
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(PARSER.parse("\u{0}\u{ffff}").device_type.as_deref(), Some("other"));
    }
}
