//! A broken channel rule as the HTTP layer answers it: 422 `Unprocessable`, the
//! rule's sentence as `message` and the rule itself (name, limit, value) as `data`,
//! so a composer can show it. `channels/` knows nothing of Feathers.

use crate::channels::rules::RuleViolation;
use crate::feathers::FeathersError;

impl From<RuleViolation> for FeathersError {
    fn from(v: RuleViolation) -> Self {
        FeathersError::unprocessable(v.message()).with_data(v.to_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Channel;

    #[test]
    fn violations_become_422_unprocessable() {
        let violation = RuleViolation::HumanAgentUnsupported {
            channel: Channel::Sms,
        };
        let err = FeathersError::from(violation.clone());
        assert_eq!(err.code(), 422);
        let body = err.to_json();
        assert_eq!(body["name"], "Unprocessable");
        assert_eq!(body["className"], "unprocessable");
        assert_eq!(body["message"], violation.message());
        assert_eq!(body["data"], violation.to_data());
    }
}
