//! Registered clients in SQL: one row each, URI lists as JSON arrays.

use async_trait::async_trait;
use latchkey_core::clients::{Client, ClientId, ClientStore, IdTokenAlg, RegisteredUri};
use latchkey_core::secret::TokenDigest;
use latchkey_core::store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, fail, from_micros, micros};

const CLIENT_COLUMNS: &str = "id, name, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, \
     secret_digest, skip_consent, id_token_alg, created_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("client {what}"))
}

fn uris_to_json(uris: &[RegisteredUri]) -> String {
    serde_json::to_string(&uris.iter().map(RegisteredUri::as_str).collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

fn uris_from_json(text: &str) -> Result<Vec<RegisteredUri>, StoreError> {
    let texts: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("URI list"))?;
    texts.iter().map(|text| RegisteredUri::parse(text).map_err(|_| corrupt("URI"))).collect()
}

fn client_from(row: &AnyRow) -> Result<Client, StoreError> {
    let id: String = row.try_get("id").map_err(fail)?;
    let digest: Option<Vec<u8>> = row.try_get("secret_digest").map_err(fail)?;
    let backchannel: Option<String> = row.try_get("backchannel_logout_uri").map_err(fail)?;
    let alg: String = row.try_get("id_token_alg").map_err(fail)?;
    Ok(Client {
        id: ClientId::parse(&id).ok_or_else(|| corrupt("id"))?,
        name: row.try_get("name").map_err(fail)?,
        redirect_uris: uris_from_json(&row.try_get::<String, _>("redirect_uris").map_err(fail)?)?,
        post_logout_redirect_uris: uris_from_json(
            &row.try_get::<String, _>("post_logout_redirect_uris").map_err(fail)?,
        )?,
        backchannel_logout_uri: backchannel
            .as_deref()
            .map(RegisteredUri::parse)
            .transpose()
            .map_err(|_| corrupt("URI"))?,
        secret_digest: digest
            .map(|bytes| TokenDigest::from_slice(&bytes).ok_or_else(|| corrupt("digest")))
            .transpose()?,
        skip_consent: row.try_get::<i64, _>("skip_consent").map_err(fail)? != 0,
        id_token_alg: IdTokenAlg::parse(&alg).ok_or_else(|| corrupt("algorithm"))?,
        created_at: from_micros(row.try_get("created_at").map_err(fail)?)?,
    })
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn insert(&self, client: &Client) -> Result<(), StoreError> {
        let sql = self.sql(format!("INSERT INTO clients ({CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
        sqlx::query(&sql)
            .bind(client.id.to_string())
            .bind(client.name.clone())
            .bind(uris_to_json(&client.redirect_uris))
            .bind(uris_to_json(&client.post_logout_redirect_uris))
            .bind(client.backchannel_logout_uri.as_ref().map(|uri| uri.as_str().to_owned()))
            .bind(client.secret_digest.map(|digest| digest.as_bytes().to_vec()))
            .bind(i64::from(client.skip_consent))
            .bind(client.id_token_alg.as_str())
            .bind(micros(client.created_at))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn get(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.one(&format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?"), id.to_string(), client_from).await
    }

    async fn list(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(client_from).collect()
    }

    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError> {
        let sql = self.sql("DELETE FROM clients WHERE id = ?");
        let removed = sqlx::query(&sql).bind(id.to_string()).execute(&self.pool).await.map_err(fail)?;
        Ok(removed.rows_affected() == 1)
    }

    async fn set_secret(&self, id: &ClientId, digest: &TokenDigest) -> Result<bool, StoreError> {
        let sql = self.sql("UPDATE clients SET secret_digest = ? WHERE id = ? AND secret_digest IS NOT NULL");
        let updated = sqlx::query(&sql)
            .bind(digest.as_bytes().to_vec())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(updated.rows_affected() == 1)
    }
}
