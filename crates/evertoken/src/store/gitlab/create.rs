//! Creating the CI/CD variables a first login fills (`auth login --store gitlab
//! --create-variable`): masked, protected and, where the server supports it (GitLab
//! 17.4+), hidden. Only a login creates variables; a refresh run never does (the
//! pre-flight still refuses a missing one). A variable that exists is left to the
//! normal write, which checks its attributes; a value GitLab could not mask is
//! refused before anything is sent.
//!
//! Docs: <https://docs.gitlab.com/api/project_level_variables/#create-a-variable>,
//! <https://docs.gitlab.com/api/group_level_variables/#create-a-variable>,
//! <https://docs.gitlab.com/ci/variables/#hide-a-cicd-variable>.

use serde::Deserialize;

use super::{GitLabStore, maskable, unanswered};
use crate::http::{Call, safe_url};
use crate::store::{Entry, StoreError};

#[derive(Debug, Deserialize)]
struct Created {
    #[serde(default)]
    masked: bool,
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    hidden: bool,
}

impl GitLabStore {
    /// Creates every variable of `entries` that does not exist yet, with its value.
    /// Returns one line per created variable, for the user.
    pub async fn create_missing(&self, entries: &[Entry]) -> Result<Vec<String>, StoreError> {
        let mut missing = Vec::new();
        for e in entries {
            if self.get(&e.var).await?.is_none() {
                if !maskable(e.value.expose(), false) {
                    return Err(StoreError::permanent(format!(
                        "the token for {} does not meet GitLab's masking rules (at least 8 characters; only letters, digits and + / = @ : . ~ - _), so {} was not created",
                        e.var, e.var
                    ))
                    .with_hint(format!(
                        "create {} yourself {} as a masked raw variable, then run the login again",
                        e.var,
                        self.settings_hint()
                    )));
                }
                missing.push(e);
            }
        }
        let mut url = self.api_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!(
            "{base}/{}/{}/variables",
            self.scope.collection(),
            urlencoding::encode(self.scope.id())
        ));
        url.set_query(None);
        url.set_fragment(None);
        let env_scope = self.environment_scope.clone().unwrap_or_else(|| "*".into());
        let mut done = Vec::new();
        for e in missing {
            let reply = self
                .http
                .send("GitLab variables API", Call::Safe, |c| {
                    c.post(url.clone())
                        .header("PRIVATE-TOKEN", self.token.expose())
                        .form(&[
                            ("key", e.var.as_str()),
                            ("value", e.value.expose()),
                            ("masked", "true"),
                            ("protected", "true"),
                            ("masked_and_hidden", "true"),
                            ("raw", "false"),
                            ("environment_scope", env_scope.as_str()),
                            (
                                "description",
                                "Kept alive by evertoken (created by `evertoken auth login`)",
                            ),
                        ])
                })
                .await
                .map_err(unanswered)?;
            if !reply.status.is_success() {
                if reply.status.as_u16() == 400 {
                    return Err(StoreError::permanent(format!(
                        "GitLab ({}) refused to create {}: {}",
                        safe_url(&url),
                        e.var,
                        reply.snippet()
                    ))
                    .with_hint(format!(
                        "create {} {} (masked and protected), then run the login again without --create-variable",
                        e.var,
                        self.settings_hint()
                    )));
                }
                return Err(self.answer_error(&e.var, &url, &reply));
            }
            let c: Created = reply.json().unwrap_or(Created {
                masked: true,
                protected: true,
                hidden: false,
            });
            if !(c.masked || c.hidden) || !c.protected {
                return Err(StoreError::permanent(format!(
                    "GitLab created {} in {} but not masked and protected",
                    e.var,
                    self.where_()
                ))
                .with_hint(format!(
                    "edit {} {} and tick \"Mask variable\" and \"Protect variable\"",
                    e.var,
                    self.settings_hint()
                )));
            }
            done.push(if c.hidden {
                format!("{} in {} (masked, protected, hidden)", e.var, self.where_())
            } else {
                format!(
                    "{} in {} (masked, protected; this GitLab has no hidden variables, which need 17.4)",
                    e.var,
                    self.where_()
                )
            });
        }
        Ok(done)
    }
}
