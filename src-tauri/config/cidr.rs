//! CIDR blocks, as `TOLLGATE_TRUSTED_PROXIES` lists them.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::net::IpAddr;
use std::str::FromStr;

/// A CIDR block such as `10.0.0.0/8` or `::1/128` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .ok()
            .map(Cidr)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        Cidr::parse(s).ok_or_else(|| format!("`{}` is not a CIDR", s.trim()))
    }
}

/// Parses `TOLLGATE_TRUSTED_PROXIES` (comma-separated CIDRs).
pub fn parse_trusted(list: &str) -> Result<Vec<Cidr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Cidr::parse(s).ok_or_else(|| format!("`{s}` in TOLLGATE_TRUSTED_PROXIES is not a CIDR"))
        })
        .collect()
}

/// Reads the trusted proxies as one comma-separated string (as the environment gives them)
/// or as a list of strings (as a TOML file may).
pub(super) fn deserialize_trusted<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Listed {
        One(String),
        Many(Vec<String>),
    }
    let joined = match Listed::deserialize(d)? {
        Listed::One(s) => s,
        Listed::Many(v) => v.join(","),
    };
    parse_trusted(&joined).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_blocks_are_refused() {
        let trusted = parse_trusted("10.0.0.0/8, 192.168.1.1").unwrap();
        assert!(trusted[0].contains("10.200.0.1".parse().unwrap()));
        assert!(!trusted[0].contains("11.0.0.1".parse().unwrap()));
        assert!(trusted[1].contains("192.168.1.1".parse().unwrap()));
        assert!(!trusted[1].contains("::1".parse().unwrap()));
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("").unwrap().is_empty());
        assert_eq!("::1/128".parse::<Cidr>(), Ok(Cidr::parse("::1").unwrap()));
        assert!("nonsense".parse::<Cidr>().is_err());
    }
}
