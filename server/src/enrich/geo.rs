//! IP address → country (and region and city when the database has them), in memory.
//!
//! The server ships DB-IP's free country database (`data/geo/`, CC BY 4.0, "IP Geolocation by DB-IP")
//! so that countries work with no setup. Operators can point `geoip_database` at their own MaxMind-format
//! file (GeoLite2/GeoIP2 Country or City, DB-IP City) for regions and cities. The IP is only used for
//! the lookup: it is never logged or kept.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use maxminddb::Reader;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

const BUNDLED_DB: &[u8] = include_bytes!("../../data/geo/dbip-country.mmdb");

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read GeoIP database {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("GeoIP database {path} is not a MaxMind DB file: {source}")]
    Invalid { path: PathBuf, source: maxminddb::MaxMindDbError },
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Option<String>,
    /// The first subdivision: its ISO code when the database has one (MaxMind: `BY`), else its name.
    pub region: Option<String>,
    pub city: Option<String>,
}

pub struct GeoLookup {
    reader: Reader<Cow<'static, [u8]>>,
}

impl GeoLookup {
    /// The bundled DB-IP country database.
    pub fn bundled() -> Result<Self, GeoError> {
        let reader = Reader::from_source(Cow::Borrowed(BUNDLED_DB))
            .map_err(|source| GeoError::Invalid { path: PathBuf::from("<bundled dbip-country.mmdb>"), source })?;
        Ok(Self { reader })
    }

    /// A MaxMind-format database read whole into memory (a City database is ~70 MB; lookups then never
    /// touch the disk).
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| GeoError::Read { path: path.to_path_buf(), source })?;
        let reader = Reader::from_source(Cow::Owned(bytes))
            .map_err(|source| GeoError::Invalid { path: path.to_path_buf(), source })?;
        Ok(Self { reader })
    }

    /// The database's own name for its type, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Where the IP is. Private, loopback and other non-public addresses, addresses the database does
    /// not know, and lookup errors all give an empty [`GeoInfo`]: location is best-effort and never
    /// fails an event.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        if !is_public(ip) {
            return GeoInfo::default();
        }
        let record = match self.reader.lookup(ip).and_then(|found| found.decode::<Record>()) {
            Ok(Some(record)) => record,
            Ok(None) | Err(_) => return GeoInfo::default(),
        };
        record.into_info()
    }
}

/// Both record layouts in one: MaxMind's (`country.iso_code`, `subdivisions[].iso_code`/`names.en`,
/// `city.names.en`) and ip-location-db's flat one (`country_code`, `state1`, `city` as a string).
#[derive(Deserialize, Default)]
struct Record {
    #[serde(default)]
    country: Option<Country>,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    subdivisions: Option<Vec<Place>>,
    #[serde(default)]
    state1: Option<String>,
    #[serde(default)]
    city: Option<PlaceName>,
}

#[derive(Deserialize)]
struct Country {
    #[serde(default)]
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct Place {
    #[serde(default)]
    iso_code: Option<String>,
    #[serde(default)]
    names: Option<Names>,
}

#[derive(Deserialize)]
struct Names {
    #[serde(default)]
    en: Option<String>,
}

impl Record {
    fn into_info(self) -> GeoInfo {
        let country_code = self
            .country
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .map(|c| c.to_ascii_uppercase())
            // DB-IP and others mark unassigned or unknown space with placeholder codes.
            .filter(|c| c.len() == 2 && !matches!(c.as_str(), "ZZ" | "XX" | "--"));
        let region = self
            .subdivisions
            .and_then(|s| s.into_iter().next())
            .and_then(|p| p.iso_code.or(p.names.and_then(|n| n.en)))
            .or(self.state1)
            .filter(|r| !r.is_empty());
        let city = self.city.and_then(|c| c.0).filter(|c| !c.is_empty());
        GeoInfo { country_code, region, city }
    }
}

/// A place name stored either as a plain string or as MaxMind's `{names: {en: ...}}`.
struct PlaceName(Option<String>);

impl<'de> Deserialize<'de> for PlaceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PlaceNameVisitor;
        impl<'de> Visitor<'de> for PlaceNameVisitor {
            type Value = PlaceName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a place name or a map with names.en")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PlaceName, E> {
                Ok(PlaceName(Some(v.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PlaceName, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "names" {
                        name = map.next_value::<Names>()?.en;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(PlaceName(name))
            }
        }
        deserializer.deserialize_any(PlaceNameVisitor)
    }
}

/// Addresses that name no place: private, loopback, link-local, carrier-grade NAT, documentation,
/// multicast and unspecified ranges.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let reserved = a >= 240 || a == 0;
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || ip.is_unspecified()
        || shared
        || reserved)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8;
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local || documentation)
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static GEO: LazyLock<GeoLookup> = LazyLock::new(|| GeoLookup::bundled().unwrap_or_else(|e| panic!("{e}")));

    fn country(ip: &str) -> Option<String> {
        let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
        GEO.lookup(ip).country_code
    }

    #[test]
    fn bundled_database_knows_well_known_addresses() {
        // Google Public DNS.
        assert_eq!(country("8.8.8.8").as_deref(), Some("US"));
        // Deutsche Telekom: a DNS resolver, a dial-up pool, and its IPv6 block 2003::/19.
        assert_eq!(country("194.25.0.60").as_deref(), Some("DE"));
        assert_eq!(country("80.156.0.1").as_deref(), Some("DE"));
        assert_eq!(country("2003::1").as_deref(), Some("DE"));
        // BBC, and a Japanese root server.
        assert_eq!(country("212.58.244.22").as_deref(), Some("GB"));
        assert_eq!(country("202.12.27.33").as_deref(), Some("JP"));
        // Anycast addresses have no true country; pinned to what this DB-IP release says (an update
        // of the bundled file may move them).
        assert_eq!(country("1.1.1.1").as_deref(), Some("AU"));
        assert_eq!(country("2001:4860:4860::8888").as_deref(), Some("CA"));
        // The country database has no regions or cities.
        let info = GEO.lookup("8.8.8.8".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!((info.region, info.city), (None, None));
    }

    #[test]
    fn non_public_addresses_have_no_location() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert_eq!(country(ip), None, "{ip}");
        }
        // An IPv4-mapped IPv6 address is looked up as the IPv4 one.
        assert_eq!(country("::ffff:8.8.8.8").as_deref(), Some("US"));
    }

    #[test]
    fn both_record_layouts() {
        let maxmind = Record {
            country: Some(Country { iso_code: Some("DE".into()) }),
            subdivisions: Some(vec![Place { iso_code: Some("BE".into()), names: None }]),
            city: Some(PlaceName(Some("Berlin".into()))),
            ..Default::default()
        };
        assert_eq!(
            maxmind.into_info(),
            GeoInfo { country_code: Some("DE".into()), region: Some("BE".into()), city: Some("Berlin".into()) }
        );
        let flat =
            Record { country_code: Some("fr".into()), state1: Some("Île-de-France".into()), ..Default::default() };
        assert_eq!(
            flat.into_info(),
            GeoInfo { country_code: Some("FR".into()), region: Some("Île-de-France".into()), city: None }
        );
        let unknown = Record { country_code: Some("ZZ".into()), ..Default::default() };
        assert_eq!(unknown.into_info(), GeoInfo::default());
    }

    /// Writes a minimal MaxMind DB (format 2.0, IPv4, 24-bit records) whose one record, for every
    /// address in 0.0.0.0/1, has the GeoIP2-City layout. Real GeoLite2 files cannot be shipped in the
    /// repo, so this pins the MaxMind layout end to end.
    fn city_layout_mmdb() -> Vec<u8> {
        fn str(out: &mut Vec<u8>, s: &str) {
            out.push((2 << 5) | s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        fn map(out: &mut Vec<u8>, entries: u8) {
            out.push((7 << 5) | entries);
        }
        fn uint(out: &mut Vec<u8>, type_code: u8, value: u64, bytes: usize) {
            let be = value.to_be_bytes();
            if type_code <= 7 {
                out.push((type_code << 5) | bytes as u8);
            } else {
                out.push(bytes as u8);
                out.push(type_code - 7);
            }
            out.extend_from_slice(&be[8 - bytes..]);
        }
        let mut db = Vec::new();
        // Search tree: one node; left (first bit 0) → data at offset 0, right → "not found".
        let node_count: u32 = 1;
        let data_pointer = node_count + 16;
        db.extend_from_slice(&data_pointer.to_be_bytes()[1..]);
        db.extend_from_slice(&node_count.to_be_bytes()[1..]);
        db.extend_from_slice(&[0; 16]);
        // Data: {country: {iso_code: "DE", names: {en: "Germany"}}, subdivisions: [{iso_code: "BE",
        // names: {en: "Land Berlin"}}], city: {geoname_id: 2950159, names: {en: "Berlin"}}}
        map(&mut db, 3);
        str(&mut db, "country");
        map(&mut db, 2);
        str(&mut db, "iso_code");
        str(&mut db, "DE");
        str(&mut db, "names");
        map(&mut db, 1);
        str(&mut db, "en");
        str(&mut db, "Germany");
        str(&mut db, "subdivisions");
        db.push(1); // array of one (extended type 11)
        db.push(11 - 7);
        map(&mut db, 2);
        str(&mut db, "iso_code");
        str(&mut db, "BE");
        str(&mut db, "names");
        map(&mut db, 1);
        str(&mut db, "en");
        str(&mut db, "Land Berlin");
        str(&mut db, "city");
        map(&mut db, 2);
        str(&mut db, "geoname_id");
        uint(&mut db, 6, 2_950_159, 4);
        str(&mut db, "names");
        map(&mut db, 1);
        str(&mut db, "en");
        str(&mut db, "Berlin");
        // Metadata.
        db.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        map(&mut db, 9);
        str(&mut db, "binary_format_major_version");
        uint(&mut db, 5, 2, 2);
        str(&mut db, "binary_format_minor_version");
        uint(&mut db, 5, 0, 2);
        str(&mut db, "build_epoch");
        uint(&mut db, 9, 1_700_000_000, 8);
        str(&mut db, "database_type");
        str(&mut db, "Test-City");
        str(&mut db, "description");
        map(&mut db, 0);
        str(&mut db, "ip_version");
        uint(&mut db, 5, 4, 2);
        str(&mut db, "languages");
        db.push(0);
        db.push(11 - 7);
        str(&mut db, "node_count");
        uint(&mut db, 6, u64::from(node_count), 4);
        str(&mut db, "record_size");
        uint(&mut db, 5, 24, 2);
        db
    }

    #[test]
    fn maxmind_city_layout_from_a_user_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("Test-City.mmdb");
        std::fs::write(&path, city_layout_mmdb()).unwrap_or_else(|e| panic!("{e}"));
        let geo = GeoLookup::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(geo.database_type(), "Test-City");
        let ip: IpAddr = "8.8.8.8".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            geo.lookup(ip),
            GeoInfo { country_code: Some("DE".into()), region: Some("BE".into()), city: Some("Berlin".into()) }
        );
        // Second half of the address space: not in this database.
        let ip: IpAddr = "194.25.0.60".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(geo.lookup(ip), GeoInfo::default());
    }

    #[test]
    fn a_missing_user_database_is_an_error() {
        let err = GeoLookup::open(Path::new("/nonexistent/GeoLite2-City.mmdb")).err();
        assert!(matches!(err, Some(GeoError::Read { .. })));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bogus = dir.path().join("bogus.mmdb");
        std::fs::write(&bogus, b"not a database").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(GeoLookup::open(&bogus).err(), Some(GeoError::Invalid { .. })));
    }

    #[test]
    fn bundled_database_decodes_through_a_file_too() {
        // Exercise the user-database path with the bundled file, which also checks the flat layout
        // end to end.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/geo/dbip-country.mmdb");
        let geo = GeoLookup::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            geo.lookup("8.8.8.8".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))).country_code.as_deref(),
            Some("US")
        );
        assert!(!geo.database_type().is_empty());
    }
}
