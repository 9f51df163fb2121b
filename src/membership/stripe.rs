//! The Stripe API, as paid tiers use it: create a Product and its Price, a Checkout
//! session in subscription mode, a billing-portal session, and read a subscription
//! back. Calls are made outside any database transaction (they are slow and may be
//! retried); what they return is recorded afterwards. Every object guildops creates
//! carries the community id (and, for a member's, the Discord user id) in metadata.
//!
//! The API version is the one async-stripe 1.0.0-rc.10 is generated for (sent as
//! `Stripe-Version` on every request); webhooks of any version are read from raw JSON
//! (`event.rs`), so an account on an older default version still works.

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
use secrecy::{ExposeSecret, SecretString};
use serenity::all::UserId;
use uuid::Uuid;

use super::event::{META_COMMUNITY, META_USER, Owner, Snapshot};
use super::{Interval, SubscriptionStatus};
use crate::config::StripeConfig;

/// The configured Stripe account: API client, URLs and webhook secrets.
pub struct Stripe {
    client: stripe::Client,
    webhook_secrets: Vec<SecretString>,
    config: StripeConfig,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("api_base", &self.config.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Stripe refused the request: {0}")]
    Refused(String),
    #[error("Stripe could not be reached: {0}")]
    Unavailable(String),
    #[error("cannot configure the Stripe client: {0}")]
    Config(String),
}

impl From<stripe::StripeError> for ApiError {
    fn from(e: stripe::StripeError) -> Self {
        match e {
            stripe::StripeError::Stripe(errors, status) if status < 500 => {
                let message = errors.message.clone().unwrap_or_default();
                ApiError::Refused(format!("{message} (HTTP {status})"))
            }
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

/// What `/tier create` made in Stripe.
#[derive(Debug, Clone)]
pub struct CreatedPrice {
    pub product_id: String,
    pub price_id: String,
}

/// A price as `/tier link` reads it.
#[derive(Debug, Clone)]
pub struct PriceInfo {
    pub product_id: String,
    pub unit_amount: i64,
    pub currency: String,
    pub interval: Option<Interval>,
}

impl Stripe {
    /// `None` when no secret key is configured: payments are off.
    pub fn from_secrets(
        config: &StripeConfig,
        secret_key: Option<&SecretString>,
        webhook_secret: Option<&SecretString>,
    ) -> Result<Option<Stripe>, ApiError> {
        let Some(key) = secret_key else {
            return Ok(None);
        };
        let mut builder = stripe::ClientBuilder::new(key.expose_secret())
            .timeout(Duration::from_secs(15))
            .app_info("guildops", Some(env!("CARGO_PKG_VERSION").into()), None);
        if let Some(base) = &config.api_base {
            builder = builder.url(base.clone());
        }
        let client = builder
            .build()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        let webhook_secrets = webhook_secret
            .map(|s| {
                s.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Stripe {
            client,
            webhook_secrets,
            config: config.clone(),
        }))
    }

    pub fn webhook_secrets(&self) -> &[SecretString] {
        &self.webhook_secrets
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    pub async fn create_price(
        &self,
        community: Uuid,
        name: &str,
        description: Option<&str>,
        unit_amount: i64,
        currency: &str,
        interval: Interval,
    ) -> Result<CreatedPrice, ApiError> {
        let meta = HashMap::from([(META_COMMUNITY.to_owned(), community.to_string())]);
        let mut product = stripe_product::product::CreateProduct::new(name).metadata(meta.clone());
        if let Some(d) = description.filter(|d| !d.is_empty()) {
            product = product.description(d);
        }
        let product = product.send(&self.client).await?;
        let currency: stripe_types::Currency = currency
            .parse()
            .map_err(|_| ApiError::Refused(format!("unknown currency {currency}")))?;
        use stripe_product::price::{
            CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval,
        };
        let every = match interval {
            Interval::Month => CreatePriceRecurringInterval::Month,
            Interval::Year => CreatePriceRecurringInterval::Year,
        };
        let price = CreatePrice::new(currency)
            .product(product.id.as_str())
            .unit_amount(unit_amount)
            .recurring(CreatePriceRecurring::new(every))
            .metadata(meta)
            .send(&self.client)
            .await?;
        Ok(CreatedPrice {
            product_id: product.id.to_string(),
            price_id: price.id.to_string(),
        })
    }

    pub async fn price(&self, price_id: &str) -> Result<PriceInfo, ApiError> {
        let price = stripe_product::price::RetrievePrice::new(price_id)
            .send(&self.client)
            .await?;
        let interval = price
            .recurring
            .as_ref()
            .and_then(|r| match r.interval.as_str() {
                "month" => Some(Interval::Month),
                "year" => Some(Interval::Year),
                _ => None,
            });
        Ok(PriceInfo {
            product_id: price.product.id().to_string(),
            unit_amount: price.unit_amount.unwrap_or(0),
            currency: price.currency.to_string(),
            interval,
        })
    }

    /// A Checkout URL for `user` to subscribe to `price_id`. The community and user
    /// travel in `client_reference_id` and in the subscription's metadata.
    pub async fn checkout(
        &self,
        community: Uuid,
        user: UserId,
        price_id: &str,
        customer: Option<&str>,
    ) -> Result<String, ApiError> {
        use stripe_checkout::checkout_session::{
            CreateCheckoutSession, CreateCheckoutSessionLineItems,
            CreateCheckoutSessionSubscriptionData,
        };
        let meta = HashMap::from([
            (META_COMMUNITY.to_owned(), community.to_string()),
            (META_USER.to_owned(), user.to_string()),
        ]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price_id.to_owned());
        item.quantity = Some(1);
        let mut data = CreateCheckoutSessionSubscriptionData::new();
        data.metadata = Some(meta.clone());
        let mut request = CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Subscription)
            .line_items(vec![item])
            .success_url(&self.config.success_url)
            .cancel_url(&self.config.cancel_url)
            .client_reference_id(format!("{community}:{user}"))
            .metadata(meta)
            .subscription_data(data);
        if let Some(c) = customer {
            request = request.customer(c);
        }
        let session = request.send(&self.client).await?;
        session
            .url
            .ok_or_else(|| ApiError::Refused("Checkout returned no URL".into()))
    }

    pub async fn portal(&self, customer: &str) -> Result<String, ApiError> {
        let session = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(&self.config.portal_return_url)
            .send(&self.client)
            .await?;
        Ok(session.url)
    }

    /// Asks Stripe to end the subscription when its paid period ends (no renewal).
    pub async fn end_at_period_end(&self, id: &str) -> Result<(), ApiError> {
        stripe_billing::subscription::UpdateSubscription::new(id)
            .cancel_at_period_end(true)
            .send(&self.client)
            .await?;
        Ok(())
    }

    /// The subscription as Stripe has it now (used when Checkout completes, so the role
    /// is granted without waiting for `customer.subscription.created`).
    pub async fn subscription(&self, id: &str) -> Result<Snapshot, ApiError> {
        let sub = stripe_billing::subscription::RetrieveSubscription::new(id)
            .send(&self.client)
            .await?;
        let status = SubscriptionStatus::parse(sub.status.as_str())
            .ok_or_else(|| ApiError::Refused(format!("unknown status {}", sub.status.as_str())))?;
        let end = sub
            .items
            .data
            .iter()
            .map(|i| i.current_period_end)
            .max()
            .and_then(|t| DateTime::from_timestamp(t, 0));
        let owner = Owner {
            community: sub
                .metadata
                .get(META_COMMUNITY)
                .and_then(|c| c.parse().ok()),
            user: sub
                .metadata
                .get(META_USER)
                .and_then(|u| u.parse::<u64>().ok())
                .filter(|u| *u > 0)
                .map(UserId::new),
        };
        Ok(Snapshot {
            id: sub.id.to_string(),
            customer: Some(sub.customer.id().to_string()),
            owner,
            status,
            price_ids: sub
                .items
                .data
                .iter()
                .map(|i| i.price.id.to_string())
                .collect(),
            current_period_end: end,
            cancel_at_period_end: sub.cancel_at_period_end,
        })
    }
}
