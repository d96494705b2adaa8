//! Who may do what in the back office: one table, checked by every back-office function
//! whichever transport (HTTP, CLI, desktop) called it.

use crate::domain::{string_enum, Role};

string_enum! {
    /// Every back-office action.
    pub enum Action {
        ListUsers = "list_users",
        ViewUser = "view_user",
        SuspendUser = "suspend_user",
        ReactivateUser = "reactivate_user",
        ChangePlan = "change_plan",
        GrantCredits = "grant_credits",
        ResetUsage = "reset_usage",
        ClearLimits = "clear_limits",
        RevokeSessions = "revoke_sessions",
        RevokeKeys = "revoke_keys",
        DeleteUser = "delete_user",
        Impersonate = "impersonate",
        /// Impersonation tokens that may also change things (not only read).
        ImpersonateWithWrites = "impersonate_with_writes",
        ExplainDecision = "explain_decision",
        ViewStats = "view_stats",
        ViewRevenue = "view_revenue",
        ViewAudit = "view_audit",
        ExportUsage = "export_usage",
        ManageStaff = "manage_staff",
        /// The plan catalog, its versions and subscriber counts; checking, diffing and simulating
        /// plan files (nothing is written).
        ViewPlans = "view_plans",
        /// Publishing a plan file as the new catalog.
        ApplyPlans = "apply_plans",
        /// Moving every subscriber of one plan version to another.
        MigratePlans = "migrate_plans",
        /// Stored Stripe webhook events and their raw JSON.
        ViewStripeEvents = "view_stripe_events",
        /// Applying stored Stripe events again (or a dry run of it) and importing event files.
        ReplayStripeEvents = "replay_stripe_events",
        /// Sending a customer a new email-verification mail.
        ResendVerification = "resend_verification",
        /// Turning off a locked-out customer's two-factor authentication.
        ResetTwoFactor = "reset_two_factor",
    }
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
