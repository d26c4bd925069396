//! The package manifest a supplier signs.
//!
//! Message signed: the canonical JSON (sorted keys, no whitespace) of
//! `{"items":[{"qty":N,"sku":"..."}...],"package_id":"...","supplier_id":"..."}`, items in the
//! order registered. Any change to the package id, the supplier or an item invalidates it.

use serde::Serialize;

use crate::model::Item;
use bftws_framework::{
    crypto::{CryptoError, PublicKey, SignatureHex, SigningKey},
    encoding,
};

#[derive(Serialize)]
struct Manifest<'a> {
    package_id: &'a str,
    supplier_id: &'a str,
    items: &'a [Item],
}

pub fn manifest_bytes(package_id: &str, supplier_id: &str, items: &[Item]) -> Vec<u8> {
    encoding::to_canonical_bytes(&Manifest { package_id, supplier_id, items })
}

pub fn sign(key: &SigningKey, package_id: &str, supplier_id: &str, items: &[Item]) -> SignatureHex {
    key.sign(&manifest_bytes(package_id, supplier_id, items))
}

pub fn verify(
    key: &PublicKey,
    package_id: &str,
    supplier_id: &str,
    items: &[Item],
    signature: &SignatureHex,
) -> Result<(), CryptoError> {
    key.verify(&manifest_bytes(package_id, supplier_id, items), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_bytes_never_change() {
        let items = [Item { sku: "SKU-1".into(), qty: 3 }];
        insta::assert_snapshot!(
            String::from_utf8(manifest_bytes("PKG-1", "sup-1", &items)).unwrap(),
            @r#"{"items":[{"qty":3,"sku":"SKU-1"}],"package_id":"PKG-1","supplier_id":"sup-1"}"#
        );
    }
}
