//! The supply-chain service's keys. The framework puts each under the service's prefix
//! (`svc/supply-chain/`); changing one is a consensus-breaking change.

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("/").into_bytes()
}

pub fn supplier(supplier_id: &str) -> Vec<u8> {
    key(&["ref", "supplier", supplier_id])
}

pub fn operator(operator_id: &str) -> Vec<u8> {
    key(&["ref", "operator", operator_id])
}

pub fn courier(courier_id: &str) -> Vec<u8> {
    key(&["ref", "courier", courier_id])
}

pub fn session(session_id: &str) -> Vec<u8> {
    key(&["session", session_id])
}

pub fn package(package_id: &str) -> Vec<u8> {
    key(&["package", package_id])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diff here breaks consensus with every existing chain: review it as such.
    #[test]
    fn keys_never_change() {
        let prefix = bftws_framework::store::keys::service_prefix(crate::NAME);
        let all = [supplier("sup-1"), operator("op-1"), courier("c-1"), session("s1"), package("p-1")];
        let text: Vec<String> =
            all.iter().map(|k| String::from_utf8([prefix.as_slice(), k].concat()).unwrap()).collect();
        insta::assert_snapshot!(text.join("\n"), @r"
        svc/supply-chain/ref/supplier/sup-1
        svc/supply-chain/ref/operator/op-1
        svc/supply-chain/ref/courier/c-1
        svc/supply-chain/session/s1
        svc/supply-chain/package/p-1
        ");
    }
}
