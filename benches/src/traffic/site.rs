//! One project's website: its domain, paths with Zipf popularity, how visitors move between pages
//! (a signup funnel and a shop funnel that a share of sessions follow), where its forms and site
//! search are, and which custom events its pages send.

use super::rng::{Rng, Weighted};
use super::vocab::WORDS;

pub const CUSTOM_EVENTS: &[&str] =
    &["signup", "purchase", "download", "outbound_click", "video_play", "newsletter_subscribe", "add_to_cart"];
pub const CUSTOM_SIGNUP: u8 = 0;
pub const CUSTOM_PURCHASE: u8 = 1;
const CUSTOM_DOWNLOAD: u8 = 2;
const CUSTOM_OUTBOUND: u8 = 3;
const CUSTOM_VIDEO: u8 = 4;
const CUSTOM_NEWSLETTER: u8 = 5;
const CUSTOM_CART: u8 = 6;

/// Pages every site has, most popular first; generated content pages follow them.
const CORE_PATHS: &[&str] = &[
    "/",
    "/pricing",
    "/features",
    "/blog",
    "/products",
    "/docs",
    "/search",
    "/signup",
    "/login",
    "/about",
    "/contact",
    "/cart",
    "/checkout",
    "/welcome",
    "/changelog",
    "/careers",
    "/privacy",
    "/terms",
];
const PATH_COUNT: usize = 300;
/// The signup funnel: each step leads to the next with FUNNEL_STEP probability.
const SIGNUP_FUNNEL: &[&str] = &["/", "/pricing", "/signup", "/welcome"];
const SHOP_FUNNEL: &[&str] = &["/products", "/cart", "/checkout"];
const FUNNEL_STEP: f64 = 0.35;

pub struct Site {
    pub id: String,
    pub domain: String,
    pub paths: Vec<String>,
    pub titles: Vec<String>,
    popularity: Weighted,
    signup_funnel: Vec<u16>,
    shop_funnel: Vec<u16>,
    forms: Vec<u16>,
    search: u16,
    pub checkout: u16,
    pub signup: u16,
}

impl Site {
    pub fn new(index: usize, rng: &mut Rng) -> Self {
        let mut paths: Vec<String> = CORE_PATHS.iter().map(|p| p.to_string()).collect();
        let mut seen: std::collections::HashSet<String> = paths.iter().cloned().collect();
        while paths.len() < PATH_COUNT {
            let path = match rng.below(10) {
                0..=3 => format!("/blog/{}-{}-{}", rng.pick(WORDS), rng.pick(WORDS), 2019 + rng.below(8)),
                4..=6 => format!("/docs/{}/{}", rng.pick(WORDS), rng.pick(WORDS)),
                _ => format!("/products/{}-{}", rng.pick(WORDS), 100 + rng.below(900)),
            };
            if seen.insert(path.clone()) {
                paths.push(path);
            }
        }
        let titles = paths.iter().map(|p| title(p)).collect();
        let index_of = |p: &str| paths.iter().position(|x| x == p).unwrap_or(0) as u16;
        Self {
            id: format!("site{}", index + 1),
            domain: format!("site{}.example.com", index + 1),
            titles,
            popularity: Weighted::zipf(PATH_COUNT, 1.1),
            signup_funnel: SIGNUP_FUNNEL.iter().map(|p| index_of(p)).collect(),
            shop_funnel: SHOP_FUNNEL.iter().map(|p| index_of(p)).collect(),
            forms: ["/signup", "/contact", "/checkout"].iter().map(|p| index_of(p)).collect(),
            search: index_of("/search"),
            checkout: index_of("/checkout"),
            signup: index_of("/signup"),
            paths,
        }
    }

    pub fn landing(&self, rng: &mut Rng) -> u16 {
        self.popularity.sample(rng) as u16
    }

    /// The page after `path`: the next funnel step sometimes, else any page by popularity.
    pub fn next(&self, path: u16, rng: &mut Rng) -> u16 {
        for funnel in [&self.signup_funnel, &self.shop_funnel] {
            if let Some(i) = funnel.iter().position(|&p| p == path) {
                if i + 1 < funnel.len() && rng.chance(FUNNEL_STEP) {
                    return funnel[i + 1];
                }
            }
        }
        if self.paths[path as usize].starts_with("/products/") && rng.chance(0.2) {
            return self.shop_funnel[1];
        }
        self.popularity.sample(rng) as u16
    }

    pub fn has_form(&self, path: u16) -> bool {
        self.forms.contains(&path)
    }

    pub fn is_search(&self, path: u16) -> bool {
        path == self.search
    }

    /// The custom event a pageview of `path` leads to, if any.
    pub fn custom_event(&self, path: u16, rng: &mut Rng) -> Option<u8> {
        let p = self.paths[path as usize].as_str();
        let (event, chance) = match p {
            "/signup" => (CUSTOM_SIGNUP, 0.35),
            "/checkout" => (CUSTOM_PURCHASE, 0.4),
            "/" => (CUSTOM_VIDEO, 0.06),
            _ if p.starts_with("/docs") => (CUSTOM_DOWNLOAD, 0.05),
            _ if p.starts_with("/blog") => (CUSTOM_NEWSLETTER, 0.03),
            _ if p.starts_with("/products/") => (CUSTOM_CART, 0.15),
            _ => (CUSTOM_OUTBOUND, 0.03),
        };
        rng.chance(chance).then_some(event)
    }
}

fn title(path: &str) -> String {
    let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("Home");
    let words: Vec<String> = last
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        })
        .collect();
    format!("{} | Example", words.join(" "))
}
