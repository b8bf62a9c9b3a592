//! Bot detection and classification.
//!
//! Detection is the `isbot` crate's pattern list (a few hundred known bot tokens). On top of it our own
//! table names the *kind* of bot, because "how much of my traffic is AI crawlers vs. uptime checks"
//! is the question operators ask. Our table also catches a few agents `isbot` misses (e.g. Datadog
//! synthetics, Playwright), so a UA matched by either is a bot.

/// What a bot is for. Stored as its [`as_str`](BotType::as_str) in the `bot_type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotType {
    /// Search and SEO indexers (Googlebot, bingbot, AhrefsBot, ...).
    Crawler,
    /// HTTP libraries and site downloaders (curl, wget, python-requests, Scrapy, HTTrack, ...).
    Scraper,
    /// Link-preview fetchers of social networks and messengers.
    SocialBot,
    /// Uptime and synthetic monitoring.
    Monitoring,
    /// Browser automation and headless browsers.
    Automation,
    /// Crawlers collecting AI training data or answering AI assistant queries.
    AiCrawler,
    Other,
}

impl BotType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crawler => "crawler",
            Self::Scraper => "scraper",
            Self::SocialBot => "social_bot",
            Self::Monitoring => "monitoring",
            Self::Automation => "automation",
            Self::AiCrawler => "ai_crawler",
            Self::Other => "other",
        }
    }
}

/// Lower-case substrings that name a bot's kind. In-app browsers (Instagram, Snapchat, Pinterest,
/// Facebook's FBAN) carry their app's name in a human visitor's UA, so only the fetchers' own tokens
/// are listed. Checked in this order, first match wins: AI before
/// crawler (GPTBot contains "bot"), social and monitoring before the generic crawler words
/// (`Pingdom.com_bot`, `Slackbot`).
const RULES: &[(BotType, &[&str])] = &[
    (
        BotType::AiCrawler,
        &[
            "gptbot",
            "chatgpt-user",
            "oai-searchbot",
            "claudebot",
            "claude-web",
            "claude-user",
            "claude-searchbot",
            "anthropic-ai",
            "ccbot",
            "perplexitybot",
            "perplexity-user",
            "bytespider",
            "meta-externalagent",
            "meta-externalfetcher",
            "cohere-ai",
            "diffbot",
            "youbot",
            "amazonbot",
            "applebot-extended",
            "google-cloudvertexbot",
            "imagesiftbot",
            "timpibot",
            "omgilibot",
            "ai2bot",
            "petalbot",
        ],
    ),
    (
        BotType::SocialBot,
        &[
            "facebookexternalhit",
            "facebookcatalog",
            "facebot",
            "twitterbot",
            "slackbot",
            "slack-imgproxy",
            "linkedinbot",
            "discordbot",
            "telegrambot",
            "pinterestbot",
            "redditbot",
            "skypeuripreview",
            "vkshare",
            "embedly",
            "iframely",
            "mastodon/",
            "bluesky cardyb",
        ],
    ),
    (
        BotType::Monitoring,
        &[
            "uptimerobot",
            "pingdom",
            "statuscake",
            "site24x7",
            "datadog",
            "newrelicpinger",
            "better uptime",
            "betteruptime",
            "uptime-kuma",
            "uptimekuma",
            "checkly",
            "freshping",
            "hetrixtools",
            "blackbox-exporter",
            "check_http",
            "monitoring-plugins",
            "zabbix",
            "nagios",
            "pingbot",
            "updown.io",
            "gtmetrix",
        ],
    ),
    (
        BotType::Automation,
        &[
            "headlesschrome",
            "phantomjs",
            "selenium",
            "webdriver",
            "puppeteer",
            "playwright",
            "cypress",
            "jsdom",
            "lighthouse",
        ],
    ),
    (
        BotType::Scraper,
        &[
            "curl/",
            "wget/",
            "python-requests",
            "python-urllib",
            "python-httpx",
            "aiohttp",
            "go-http-client",
            "scrapy",
            "httrack",
            "java/",
            "okhttp",
            "axios/",
            "node-fetch",
            "undici",
            "libwww-perl",
            "apache-httpclient",
            "guzzlehttp",
            "postmanruntime",
            "insomnia/",
            "httpie",
            "wkhtmlto",
        ],
    ),
    (
        BotType::Crawler,
        &[
            "googlebot",
            "google-inspectiontool",
            "adsbot-google",
            "mediapartners-google",
            "storebot-google",
            "bingbot",
            "bingpreview",
            "msnbot",
            "adidxbot",
            "applebot",
            "yandexbot",
            "yandex.com/bots",
            "baiduspider",
            "duckduckbot",
            "duckassistbot",
            "sogou",
            "exabot",
            "seznambot",
            "qwantbot",
            "ahrefsbot",
            "semrushbot",
            "mj12bot",
            "dotbot",
            "blexbot",
            "dataforseobot",
            "archive.org_bot",
            "ia_archiver",
            "crawler",
            "spider",
            "crawl",
            "bot/",
            "bot;",
            "bot ",
        ],
    ),
];

/// Detects and classifies bots; built once at start-up (compiles `isbot`'s combined regex).
#[derive(Debug, Default)]
pub struct BotDetector {
    bots: isbot::Bots,
}

impl BotDetector {
    /// `Some(kind)` when the user agent is a bot. An empty user agent is a bot of kind
    /// [`BotType::Other`]: browsers always send one.
    pub fn classify(&self, user_agent: &str) -> Option<BotType> {
        let ua = user_agent.trim();
        if ua.is_empty() {
            return Some(BotType::Other);
        }
        let lower = ua.to_ascii_lowercase();
        // WhatsApp's link-preview fetcher sends only `WhatsApp/2.23.20.0 A`; its in-app browser sends a
        // full browser UA with no such prefix.
        if lower.starts_with("whatsapp/") {
            return Some(BotType::SocialBot);
        }
        let by_rule =
            RULES.iter().find(|(_, needles)| needles.iter().any(|n| lower.contains(n))).map(|(kind, _)| *kind);
        match by_rule {
            // The generic crawler words ("bot ", "crawl") alone are weaker evidence than isbot's list.
            Some(BotType::Crawler) if !self.bots.is_bot(ua) && !is_named_crawler(&lower) => None,
            Some(kind) => Some(kind),
            None if self.bots.is_bot(ua) => Some(BotType::Other),
            None => None,
        }
    }

    pub fn is_bot(&self, user_agent: &str) -> bool {
        self.classify(user_agent).is_some()
    }
}

/// Whether one of the named crawlers (not only a generic word) matched.
fn is_named_crawler(lower: &str) -> bool {
    RULES
        .iter()
        .filter(|(kind, _)| *kind == BotType::Crawler)
        .flat_map(|(_, needles)| needles.iter())
        .take_while(|n| **n != "crawler")
        .any(|n| lower.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_types_of_real_user_agents() {
        let d = BotDetector::default();
        let cases: &[(&str, Option<BotType>)] = &[
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Some(BotType::Crawler)),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", Some(BotType::Crawler)),
            ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", Some(BotType::Crawler)),
            ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", Some(BotType::SocialBot)),
            ("Twitterbot/1.0", Some(BotType::SocialBot)),
            ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", Some(BotType::SocialBot)),
            ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", Some(BotType::SocialBot)),
            ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", Some(BotType::SocialBot)),
            ("WhatsApp/2.23.20.0 A", Some(BotType::SocialBot)),
            ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", Some(BotType::Monitoring)),
            ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", Some(BotType::Monitoring)),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Datadog/Synthetics", Some(BotType::Monitoring)),
            ("Site24x7", Some(BotType::Monitoring)),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36", Some(BotType::Automation)),
            ("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1", Some(BotType::Automation)),
            ("curl/8.4.0", Some(BotType::Scraper)),
            ("Wget/1.21.4", Some(BotType::Scraper)),
            ("python-requests/2.31.0", Some(BotType::Scraper)),
            ("Go-http-client/1.1", Some(BotType::Scraper)),
            ("Scrapy/2.11.0 (+https://scrapy.org)", Some(BotType::Scraper)),
            ("Mozilla/5.0 (compatible; HTTrack 3.0x; Windows 98)", Some(BotType::Scraper)),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", Some(BotType::AiCrawler)),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", Some(BotType::AiCrawler)),
            ("CCBot/2.0 (https://commoncrawl.org/faq/)", Some(BotType::AiCrawler)),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)", Some(BotType::AiCrawler)),
            ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)", Some(BotType::AiCrawler)),
            ("", Some(BotType::Other)),
            ("   ", Some(BotType::Other)),
            // Browsers, including in-app ones.
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", None),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.37.105]", None),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36 Instagram 311.0.0.32.118 Android", None),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.60.0.43 (like Safari/8617.2.4.10.8, panda)", None),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]", None),
            ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36", None),
        ];
        for (ua, expected) in cases {
            assert_eq!(d.classify(ua), *expected, "{ua}");
        }
    }

    #[test]
    fn type_names() {
        assert_eq!(BotType::SocialBot.as_str(), "social_bot");
        assert_eq!(BotType::AiCrawler.as_str(), "ai_crawler");
    }
}
