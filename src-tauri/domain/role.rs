use std::fmt;

string_enum! {
    /// What a person is to Tollgate: a customer's end user, or staff of the API business.
    pub enum Role {
        User = "user",
        Support = "support",
        Finance = "finance",
        Admin = "admin",
    }
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_staff(self) -> bool {
        self != Role::User
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_enum! {
    /// Life-cycle state of an account.
    pub enum UserStatus {
        Active = "active",
        Suspended = "suspended",
        Deleted = "deleted",
    }
}

impl UserStatus {
    pub fn parse(s: &str) -> Option<UserStatus> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}
