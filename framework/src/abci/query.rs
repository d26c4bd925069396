//! Info and Query.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tendermint::{abci::response, v0_38::abci::request};

use super::AbciCore;
use crate::store::StateView;

impl AbciCore {
    pub(super) fn info(&mut self) -> response::Info {
        let last = self.store.last_block().expect("store readable at Info");
        self.status.connected.store(true, Ordering::Relaxed);
        response::Info {
            data: "bftws".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 1,
            last_block_height: u32::try_from(last.height).unwrap_or(u32::MAX).into(),
            last_block_app_hash: last.app_hash.try_into().expect("any byte string is an app hash"),
        }
    }

    /// `path = "/state"`, `data = key`: the raw value at that key in committed state.
    pub(super) fn query(&mut self, query: request::Query) -> response::Query {
        if query.path != "/state" {
            return response::Query {
                code: 1u32.into(),
                log: format!("unknown query path '{}'", query.path),
                ..Default::default()
            };
        }
        let snapshot = match self.store.snapshot() {
            Ok(s) => s,
            Err(e) => return response::Query { code: 2u32.into(), log: e.to_string(), ..Default::default() },
        };
        let height = snapshot.last_block().map(|b| b.height).unwrap_or(0);
        match snapshot.get(&query.data) {
            Ok(value) => response::Query {
                key: query.data,
                value: value.map(Bytes::from).unwrap_or_default(),
                height: u32::try_from(height).unwrap_or(u32::MAX).into(),
                ..Default::default()
            },
            Err(e) => response::Query { code: 2u32.into(), log: e.to_string(), ..Default::default() },
        }
    }
}
