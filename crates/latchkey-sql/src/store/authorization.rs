//! Authorization codes and consent in SQL. A code's redemption is one conditional `UPDATE`
//! (`redeemed_at IS NULL`), so exactly one presentation wins on any number of instances.

use async_trait::async_trait;
use latchkey_core::authorization::{AuthorizationCode, CodeChallenge, CodeStore, Consent, ConsentStore, Redemption};
use latchkey_core::clients::ClientId;
use latchkey_core::ids::{SessionId, UserId};
use latchkey_core::secret::TokenDigest;
use latchkey_core::store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, fail, from_micros, micros, uuid};

const CODE_COLUMNS: &str = "digest, client_id, redirect_uri, code_challenge, user_id, sso_session_id, scopes, nonce, \
     auth_time, issued_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("authorization {what}"))
}

/// Scopes as OAuth writes them: separated by single spaces.
fn scopes_from(text: &str) -> Vec<String> {
    text.split(' ').filter(|scope| !scope.is_empty()).map(str::to_owned).collect()
}

fn code_from(row: &AnyRow) -> Result<AuthorizationCode, StoreError> {
    let digest: Vec<u8> = row.try_get("digest").map_err(fail)?;
    let client: String = row.try_get("client_id").map_err(fail)?;
    let challenge: String = row.try_get("code_challenge").map_err(fail)?;
    Ok(AuthorizationCode {
        digest: TokenDigest::from_slice(&digest).ok_or_else(|| corrupt("code digest"))?,
        client_id: ClientId::parse(&client).ok_or_else(|| corrupt("client id"))?,
        redirect_uri: row.try_get("redirect_uri").map_err(fail)?,
        challenge: CodeChallenge::parse(&challenge).ok_or_else(|| corrupt("code challenge"))?,
        user_id: UserId::from_uuid(uuid(&row.try_get::<String, _>("user_id").map_err(fail)?)?),
        sso_session: SessionId::from_uuid(uuid(&row.try_get::<String, _>("sso_session_id").map_err(fail)?)?),
        scopes: scopes_from(&row.try_get::<String, _>("scopes").map_err(fail)?),
        nonce: row.try_get("nonce").map_err(fail)?,
        auth_time: from_micros(row.try_get("auth_time").map_err(fail)?)?,
        issued_at: from_micros(row.try_get("issued_at").map_err(fail)?)?,
    })
}

fn consent_from(row: &AnyRow) -> Result<Consent, StoreError> {
    let client: String = row.try_get("client_id").map_err(fail)?;
    Ok(Consent {
        user_id: UserId::from_uuid(uuid(&row.try_get::<String, _>("user_id").map_err(fail)?)?),
        client_id: ClientId::parse(&client).ok_or_else(|| corrupt("client id"))?,
        scopes: scopes_from(&row.try_get::<String, _>("scopes").map_err(fail)?),
        granted_at: from_micros(row.try_get("granted_at").map_err(fail)?)?,
    })
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn insert(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let sql =
            self.sql(format!("INSERT INTO authorization_codes ({CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
        sqlx::query(&sql)
            .bind(code.digest.as_bytes().to_vec())
            .bind(code.client_id.to_string())
            .bind(code.redirect_uri.clone())
            .bind(code.challenge.as_str().to_owned())
            .bind(code.user_id.to_string())
            .bind(code.sso_session.to_string())
            .bind(code.scopes.join(" "))
            .bind(code.nonce.clone())
            .bind(micros(code.auth_time))
            .bind(micros(code.issued_at))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn redeem(&self, digest: &TokenDigest, at: OffsetDateTime) -> Result<Redemption, StoreError> {
        let claim = self.sql(format!(
            "UPDATE authorization_codes SET redeemed_at = ? WHERE digest = ? AND redeemed_at IS NULL RETURNING {CODE_COLUMNS}"
        ));
        let first = sqlx::query(&claim)
            .bind(micros(at))
            .bind(digest.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
        if let Some(row) = first {
            return code_from(&row).map(Redemption::First);
        }
        let earlier = self.sql("SELECT issued_session_id FROM authorization_codes WHERE digest = ?");
        let row =
            sqlx::query(&earlier).bind(digest.as_bytes().to_vec()).fetch_optional(&self.pool).await.map_err(fail)?;
        let Some(row) = row else { return Ok(Redemption::Unknown) };
        let issued: Option<String> = row.try_get("issued_session_id").map_err(fail)?;
        let issued = issued.map(|id| uuid(&id).map(SessionId::from_uuid)).transpose()?;
        Ok(Redemption::Replayed { issued })
    }

    async fn record_issued(&self, digest: &TokenDigest, session: SessionId) -> Result<(), StoreError> {
        let sql = self.sql("UPDATE authorization_codes SET issued_session_id = ? WHERE digest = ?");
        sqlx::query(&sql)
            .bind(session.to_string())
            .bind(digest.as_bytes().to_vec())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn purge_codes(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let sql = self.sql("DELETE FROM authorization_codes WHERE issued_at < ?");
        let purged = sqlx::query(&sql).bind(micros(before)).execute(&self.pool).await.map_err(fail)?;
        Ok(purged.rows_affected())
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn grant(&self, consent: &Consent) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        );
        sqlx::query(&sql)
            .bind(consent.user_id.to_string())
            .bind(consent.client_id.to_string())
            .bind(consent.scopes.join(" "))
            .bind(micros(consent.granted_at))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn consent(&self, user: UserId, client: &ClientId) -> Result<Option<Consent>, StoreError> {
        let sql =
            self.sql("SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = ? AND client_id = ?");
        let row = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(client.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
        row.as_ref().map(consent_from).transpose()
    }

    async fn consents_of(&self, user: UserId) -> Result<Vec<Consent>, StoreError> {
        let sql = self.sql(
            "SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = ? ORDER BY granted_at DESC, client_id",
        );
        let rows = sqlx::query(&sql).bind(user.to_string()).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(consent_from).collect()
    }

    async fn withdraw(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError> {
        let sql = self.sql("DELETE FROM consents WHERE user_id = ? AND client_id = ?");
        let deleted = sqlx::query(&sql)
            .bind(user.to_string())
            .bind(client.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(deleted.rows_affected() == 1)
    }
}
