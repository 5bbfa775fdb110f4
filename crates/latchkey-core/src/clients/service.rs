//! The service's operations on clients: registering one (and making sure a key of its
//! ID-token algorithm signs), listing, removing, and rotating a confidential client's secret.

use std::collections::HashMap;

use super::{Client, ClientError, ClientId, NewClient, Registered, RegisteredUri};
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::revocation::RevocationCause;
use crate::secret::SecretToken;
use crate::sessions::Session;

impl Latchkey {
    /// Registers a client; a confidential one gets a new secret, returned this once.
    pub async fn register_client(&self, new: NewClient) -> Result<Registered, AuthError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ClientError::InvalidName.into());
        }
        if new.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri.into());
        }
        let uris =
            |texts: &[String]| texts.iter().map(|text| RegisteredUri::parse(text)).collect::<Result<Vec<_>, _>>();
        let secret = (!new.public).then(SecretToken::generate);
        let client = Client {
            id: ClientId::generate(),
            name: name.to_owned(),
            redirect_uris: uris(&new.redirect_uris).map_err(ClientError::from)?,
            post_logout_redirect_uris: uris(&new.post_logout_redirect_uris).map_err(ClientError::from)?,
            backchannel_logout_uri: new
                .backchannel_logout_uri
                .as_deref()
                .map(RegisteredUri::parse)
                .transpose()
                .map_err(ClientError::from)?,
            secret_digest: secret.as_ref().map(SecretToken::digest),
            skip_consent: new.skip_consent,
            id_token_alg: new.id_token_alg,
            created_at: self.now(),
        };
        self.inner.stores.clients.insert(&client).await?;
        // Its ID tokens need a key of their algorithm, published before any is signed.
        self.ensure_signing_key(client.id_token_alg.signing()).await?;
        Ok(Registered { client, secret })
    }

    /// Every registered client, oldest first.
    pub async fn clients(&self) -> Result<Vec<Client>, AuthError> {
        Ok(self.inner.stores.clients.list().await?)
    }

    /// A registered client by id.
    pub async fn client(&self, id: &ClientId) -> Result<Option<Client>, AuthError> {
        Ok(self.inner.stores.clients.get(id).await?)
    }

    /// The names of the apps that `sessions` belong to (for a device list), by client id. An
    /// app removed since has no name here.
    pub async fn app_names(&self, sessions: &[Session]) -> Result<HashMap<ClientId, String>, AuthError> {
        let mut names = HashMap::new();
        for app in sessions.iter().filter_map(|session| session.app.as_ref()) {
            if names.contains_key(&app.client_id) {
                continue;
            }
            if let Some(client) = self.inner.stores.clients.get(&app.client_id).await? {
                names.insert(client.id, client.name);
            }
        }
        Ok(names)
    }

    /// Removes a client and ends its sessions (their access tokens are refused at once,
    /// wherever they are checked); `NotFound` for an unknown id.
    pub async fn remove_client(&self, id: &ClientId) -> Result<(), AuthError> {
        if self.inner.stores.clients.remove(id).await? {
            let mut users = self.inner.stores.sign_ins.users_signed_in_to(id).await?;
            users.sort();
            users.dedup();
            for user in users {
                self.end_app_sessions(user, id, RevocationCause::ClientRemoved).await?;
            }
            Ok(())
        } else {
            Err(ClientError::NotFound(id.to_string()).into())
        }
    }

    /// Gives a confidential client a new secret, returned this once; the old one stops working
    /// at once.
    pub async fn rotate_client_secret(&self, id: &ClientId) -> Result<SecretToken, AuthError> {
        let client = self.client(id).await?.ok_or_else(|| ClientError::NotFound(id.to_string()))?;
        if client.is_public() {
            return Err(ClientError::Public(id.to_string()).into());
        }
        let secret = SecretToken::generate();
        if !self.inner.stores.clients.set_secret(id, &secret.digest()).await? {
            return Err(ClientError::NotFound(id.to_string()).into());
        }
        Ok(secret)
    }
}
