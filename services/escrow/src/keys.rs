//! The escrow service's keys. The framework puts each under the service's prefix (`svc/escrow/`);
//! changing one is a consensus-breaking change.

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("/").into_bytes()
}

pub fn account(account_id: &str) -> Vec<u8> {
    key(&["account", account_id])
}

pub fn seller(seller_id: &str) -> Vec<u8> {
    key(&["seller", seller_id])
}

pub fn listing(listing_id: &str) -> Vec<u8> {
    key(&["listing", listing_id])
}

pub fn session(session_id: &str) -> Vec<u8> {
    key(&["session", session_id])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diff here breaks consensus with every existing chain: review it as such.
    #[test]
    fn keys_never_change() {
        let prefix = bftws_framework::store::keys::service_prefix(crate::NAME);
        let all = [account("b-1"), seller("s-1"), listing("l-1"), session("ses-1")];
        let text: Vec<String> =
            all.iter().map(|k| String::from_utf8([prefix.as_slice(), k].concat()).unwrap()).collect();
        insta::assert_snapshot!(text.join("\n"), @r"
        svc/escrow/account/b-1
        svc/escrow/seller/s-1
        svc/escrow/listing/l-1
        svc/escrow/session/ses-1
        ");
    }
}
