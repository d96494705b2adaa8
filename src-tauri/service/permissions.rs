//! Who may do what in the back office: one table, checked by every back-office function
//! whichever transport (HTTP, CLI, desktop) called it.

use crate::domain::Role;
use serde::{Deserialize, Serialize};

/// Every back-office action.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Action {
    ListUsers,
    ViewUser,
    SuspendUser,
    ReactivateUser,
    ChangePlan,
    GrantCredits,
    ResetUsage,
    ClearLimits,
    RevokeSessions,
    RevokeKeys,
    DeleteUser,
    Impersonate,
    /// Impersonation tokens that may also change things (not only read).
    ImpersonateWithWrites,
    ExplainDecision,
    ViewStats,
    ViewRevenue,
    ViewAudit,
    ExportUsage,
    ManageStaff,
    /// The plan catalog, its versions and subscriber counts; checking, diffing and simulating
    /// plan files (nothing is written).
    ViewPlans,
    /// Publishing a plan file as the new catalog.
    ApplyPlans,
    /// Moving every subscriber of one plan version to another.
    MigratePlans,
    /// Stored Stripe webhook events and their raw JSON.
    ViewStripeEvents,
    /// Applying stored Stripe events again (or a dry run of it) and importing event files.
    ReplayStripeEvents,
    /// Sending a customer a new email-verification mail.
    ResendVerification,
    /// Turning off a locked-out customer's two-factor authentication.
    ResetTwoFactor,
}

impl Action {
    pub const ALL: [Action; 26] = [
        Action::ListUsers,
        Action::ViewUser,
        Action::SuspendUser,
        Action::ReactivateUser,
        Action::ChangePlan,
        Action::GrantCredits,
        Action::ResetUsage,
        Action::ClearLimits,
        Action::RevokeSessions,
        Action::RevokeKeys,
        Action::DeleteUser,
        Action::Impersonate,
        Action::ImpersonateWithWrites,
        Action::ExplainDecision,
        Action::ViewStats,
        Action::ViewRevenue,
        Action::ViewAudit,
        Action::ExportUsage,
        Action::ManageStaff,
        Action::ViewPlans,
        Action::ApplyPlans,
        Action::MigratePlans,
        Action::ViewStripeEvents,
        Action::ReplayStripeEvents,
        Action::ResendVerification,
        Action::ResetTwoFactor,
    ];
}

/// The permission table. Support fixes customers' problems; finance reads revenue, invoices,
/// usage and users; admins may do everything. Every staff member reads and checks plans; only
/// admins publish a catalog or move subscribers between versions. Nobody impersonates with writes but admins.
/// Every staff member reads Stripe events; support and admins replay them (replaying repairs a
/// customer's subscription from Stripe's own facts, which is support's work), finance does not.
/// Support helps locked-out customers: resending verification mail, resetting two-factor.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::User => false,
        Role::Admin => true,
        Role::Support => matches!(
            action,
            ListUsers
                | ViewUser
                | SuspendUser
                | ReactivateUser
                | ChangePlan
                | GrantCredits
                | ResetUsage
                | ClearLimits
                | RevokeSessions
                | RevokeKeys
                | DeleteUser
                | Impersonate
                | ExplainDecision
                | ViewStats
                | ViewAudit
                | ViewPlans
                | ViewStripeEvents
                | ReplayStripeEvents
                | ResendVerification
                | ResetTwoFactor
        ),
        Role::Finance => matches!(
            action,
            ListUsers
                | ViewUser
                | ViewStats
                | ViewRevenue
                | ExportUsage
                | ViewAudit
                | ViewPlans
                | ViewStripeEvents
        ),
    }
}
