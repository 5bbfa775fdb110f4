//! Apps' sign-ins and their back-channel logout deliveries in SQL. A delivery is claimed by one
//! conditional `UPDATE` that moves its next attempt past a lease (on PostgreSQL over rows
//! locked with `SKIP LOCKED`, so instances claiming at once take different deliveries).

use async_trait::async_trait;
use latchkey_core::clients::ClientId;
use latchkey_core::ids::{SessionId, UserId};
use latchkey_core::logout::{AppSignInStore, Delivery, DeliveryState, Settlement};
use latchkey_core::store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{Backend, SqlStore, fail, from_micros, micros, uuid};

const DELIVERY_COLUMNS: &str = "client_id, sso_session_id, user_id, state, attempts, next_attempt_at, ended_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("app sign-in {what}"))
}

fn delivery_from(row: &AnyRow) -> Result<Delivery, StoreError> {
    let client: String = row.try_get("client_id").map_err(fail)?;
    let state: String = row.try_get("state").map_err(fail)?;
    let next: Option<i64> = row.try_get("next_attempt_at").map_err(fail)?;
    let ended: Option<i64> = row.try_get("ended_at").map_err(fail)?;
    Ok(Delivery {
        client_id: ClientId::parse(&client).ok_or_else(|| corrupt("client id"))?,
        sso_session: SessionId::from_uuid(uuid(&row.try_get::<String, _>("sso_session_id").map_err(fail)?)?),
        user_id: UserId::from_uuid(uuid(&row.try_get::<String, _>("user_id").map_err(fail)?)?),
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state"))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(fail)?).map_err(|_| corrupt("attempts"))?,
        next_attempt_at: next.map(from_micros).transpose()?,
        ended_at: from_micros(ended.ok_or_else(|| corrupt("delivery of an open sign-in"))?)?,
    })
}

#[async_trait]
impl AppSignInStore for SqlStore {
    async fn record_sign_in(
        &self,
        client: &ClientId,
        sso: SessionId,
        user: UserId,
        notify: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO app_sign_ins (client_id, sso_session_id, user_id, notify, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (client_id, sso_session_id) DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(client.to_string())
            .bind(sso.to_string())
            .bind(user.to_string())
            .bind(i64::from(notify))
            .bind(micros(at))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn users_signed_in_to(&self, client: &ClientId) -> Result<Vec<UserId>, StoreError> {
        let sql = self.sql("SELECT user_id FROM app_sign_ins WHERE client_id = ? AND ended_at IS NULL");
        let rows = sqlx::query(&sql).bind(client.to_string()).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter()
            .map(|row| Ok(UserId::from_uuid(uuid(&row.try_get::<String, _>("user_id").map_err(fail)?)?)))
            .collect()
    }

    async fn open_sign_ins(&self) -> Result<Vec<(SessionId, UserId)>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT sso_session_id, user_id FROM app_sign_ins WHERE ended_at IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter()
            .map(|row| {
                let sso: String = row.try_get("sso_session_id").map_err(fail)?;
                let user: String = row.try_get("user_id").map_err(fail)?;
                Ok((SessionId::from_uuid(uuid(&sso)?), UserId::from_uuid(uuid(&user)?)))
            })
            .collect()
    }

    async fn end_sign_ins(&self, sso: &[SessionId], at: OffsetDateTime) -> Result<u64, StoreError> {
        let mut pending = 0;
        // Bounded statements: a user with many sign-ins ending at once ("log out everywhere").
        for chunk in sso.chunks(100) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = self.sql(format!(
                "UPDATE app_sign_ins SET ended_at = ?, \
                 state = CASE WHEN notify = 1 THEN 'pending' ELSE NULL END, \
                 next_attempt_at = CASE WHEN notify = 1 THEN ? ELSE NULL END \
                 WHERE ended_at IS NULL AND sso_session_id IN ({marks}) RETURNING notify"
            ));
            let mut query = sqlx::query(&sql).bind(micros(at)).bind(micros(at));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let rows = query.fetch_all(&self.pool).await.map_err(fail)?;
            for row in &rows {
                if row.try_get::<i64, _>("notify").map_err(fail)? != 0 {
                    pending += 1;
                }
            }
        }
        Ok(pending)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        // Every instance asks every second: a read first, so that nothing due (the usual
        // answer) takes no write lock.
        let due = self.sql("SELECT 1 FROM app_sign_ins WHERE state = 'pending' AND next_attempt_at <= ? LIMIT 1");
        if sqlx::query(&due).bind(micros(now)).fetch_optional(&self.pool).await.map_err(fail)?.is_none() {
            return Ok(Vec::new());
        }
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // One writer at a time: nothing can claim in between.
            Backend::Sqlite => "",
        };
        let sql = self.sql(format!(
            "UPDATE app_sign_ins SET next_attempt_at = ?, attempts = attempts + 1 \
             WHERE state = 'pending' AND next_attempt_at <= ? AND (client_id, sso_session_id) IN \
             (SELECT client_id, sso_session_id FROM app_sign_ins WHERE state = 'pending' AND next_attempt_at <= ? \
              ORDER BY next_attempt_at LIMIT ? {lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        ));
        let rows = sqlx::query(&sql)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter().map(delivery_from).collect()
    }

    async fn settle(&self, client: &ClientId, sso: SessionId, outcome: Settlement) -> Result<(), StoreError> {
        let (state, next) = match outcome {
            Settlement::Delivered => (DeliveryState::Delivered, None),
            Settlement::RetryAt(at) => (DeliveryState::Pending, Some(micros(at))),
            Settlement::Failed => (DeliveryState::Failed, None),
        };
        let sql = self.sql(
            "UPDATE app_sign_ins SET state = ?, next_attempt_at = ? \
             WHERE client_id = ? AND sso_session_id = ? AND state = 'pending'",
        );
        sqlx::query(&sql)
            .bind(state.as_str())
            .bind(next)
            .bind(client.to_string())
            .bind(sso.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn deliveries_of(&self, client: &ClientId) -> Result<Vec<Delivery>, StoreError> {
        let sql = self.sql(format!(
            "SELECT {DELIVERY_COLUMNS} FROM app_sign_ins WHERE client_id = ? AND state IS NOT NULL \
             ORDER BY ended_at DESC, sso_session_id"
        ));
        let rows = sqlx::query(&sql).bind(client.to_string()).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(delivery_from).collect()
    }

    async fn purge_sign_ins(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let sql = self.sql("DELETE FROM app_sign_ins WHERE ended_at < ? AND (state IS NULL OR state <> 'pending')");
        let deleted = sqlx::query(&sql).bind(micros(before)).execute(&self.pool).await.map_err(fail)?;
        Ok(deleted.rows_affected())
    }
}
