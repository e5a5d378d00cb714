//! Jobs and their flows: which step runs after which.
//!
//! A flow is a graph of steps. After a step, its exit code is matched against the
//! transitions declared from it (`on("FAILED").to(cleanup)`, `*` and `?` wildcards, the
//! most specific pattern winning); with no match, a COMPLETED step goes on to the step
//! declared with [`FlowBuilder::next`] (or ends the job COMPLETED), and any other
//! status ends the job with that status, as Spring Batch's sequential jobs do.

use std::fmt;
use std::sync::Arc;

use crate::execution::{BatchStatus, ExitStatus, JobExecution};
use crate::incrementer::{JobParametersIncrementer, RunIdIncrementer};
use crate::params::JobParameters;
use crate::step::builder::{IntoStep, StepDef};
use crate::validate::{InvalidParameters, JobParametersValidator, ParameterRules};

/// Where a transition leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Step(usize),
    /// End the job with this status (COMPLETED, FAILED or STOPPED).
    End(BatchStatus),
}

#[derive(Debug, Clone)]
pub(crate) struct Transition {
    pub(crate) pattern: String,
    pub(crate) target: Target,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) step: StepDef,
    pub(crate) transitions: Vec<Transition>,
    pub(crate) next: Option<usize>,
}

/// A built flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub(crate) nodes: Vec<Node>,
}

impl Flow {
    /// Starts a flow with its first step.
    #[allow(clippy::new_ret_no_self)]
    pub fn start(step: impl IntoStep) -> FlowBuilder {
        let mut b = FlowBuilder {
            nodes: Vec::new(),
            current: 0,
        };
        b.current = b.node(step.into_step());
        b
    }

    /// The steps in the order they were declared.
    pub fn steps(&self) -> impl Iterator<Item = &StepDef> {
        self.nodes.iter().map(|n| &n.step)
    }

    /// Where the flow goes after `node` ended with `status` and `exit`, and whether a
    /// declared transition said so (rather than the default).
    pub(crate) fn target(
        &self,
        node: usize,
        status: BatchStatus,
        exit: &ExitStatus,
    ) -> (Target, bool) {
        let n = &self.nodes[node];
        let best = n
            .transitions
            .iter()
            .filter(|t| pattern_matches(&t.pattern, &exit.code))
            .max_by_key(|t| specificity(&t.pattern));
        if let Some(t) = best {
            return (t.target.clone(), true);
        }
        let target = match (status, n.next) {
            (BatchStatus::Completed, Some(next)) => Target::Step(next),
            (BatchStatus::Completed, None) => Target::End(BatchStatus::Completed),
            (BatchStatus::Stopped | BatchStatus::Stopping, _) => Target::End(BatchStatus::Stopped),
            _ => Target::End(BatchStatus::Failed),
        };
        (target, false)
    }
}

/// Builds a [`Flow`], Spring's `FlowBuilder` style.
pub struct FlowBuilder {
    nodes: Vec<Node>,
    current: usize,
}

impl fmt::Debug for FlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowBuilder")
            .field("steps", &self.nodes.len())
            .finish()
    }
}

impl FlowBuilder {
    fn node(&mut self, step: StepDef) -> usize {
        if let Some(i) = self.nodes.iter().position(|n| n.step.name == step.name) {
            return i;
        }
        self.nodes.push(Node {
            step,
            transitions: Vec::new(),
            next: None,
        });
        self.nodes.len() - 1
    }

    /// After the current step completes, run `step`; it becomes the current step.
    pub fn next(mut self, step: impl IntoStep) -> Self {
        let i = self.node(step.into_step());
        self.nodes[self.current].next = Some(i);
        self.current = i;
        self
    }

    /// A transition from the current step for exit codes matching `pattern` (`*` any
    /// run of characters, `?` one character).
    pub fn on(self, pattern: &str) -> TransitionBuilder {
        TransitionBuilder {
            flow: self,
            pattern: pattern.to_owned(),
        }
    }

    /// Makes an already declared step current, to declare its transitions.
    ///
    /// # Panics
    /// If no step of that name was declared: a flow wired to a missing step is a
    /// programming error, found the first time the job is built.
    pub fn from(mut self, step: impl IntoStep) -> Self {
        let step = step.into_step();
        self.current = self
            .nodes
            .iter()
            .position(|n| n.step.name == step.name)
            .unwrap_or_else(|| {
                panic!(
                    "flow: `from({})` names a step that is not in the flow yet",
                    step.name
                )
            });
        self
    }

    /// Finishes the flow.
    pub fn build(self) -> Flow {
        Flow { nodes: self.nodes }
    }
}

impl From<FlowBuilder> for Flow {
    fn from(b: FlowBuilder) -> Self {
        b.build()
    }
}

/// The second half of `on(pattern)`.
pub struct TransitionBuilder {
    flow: FlowBuilder,
    pattern: String,
}

impl TransitionBuilder {
    fn add(mut self, target: Target) -> FlowBuilder {
        let current = self.flow.current;
        self.flow.nodes[current].transitions.push(Transition {
            pattern: self.pattern,
            target,
        });
        self.flow
    }

    /// Go to `step`, which becomes the current step.
    pub fn to(mut self, step: impl IntoStep) -> FlowBuilder {
        let i = self.flow.node(step.into_step());
        let mut flow = self.add(Target::Step(i));
        flow.current = i;
        flow
    }

    /// End the job COMPLETED.
    pub fn end(self) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Completed))
    }

    /// End the job FAILED (it can be restarted).
    pub fn fail(self) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Failed))
    }

    /// End the job STOPPED (it can be restarted).
    pub fn stop(self) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Stopped))
    }
}

fn pattern_matches(pattern: &str, code: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), code.as_bytes())
}

/// More literal characters is more specific; fewer wildcards breaks ties.
fn specificity(pattern: &str) -> (usize, std::cmp::Reverse<usize>) {
    let wild = pattern.chars().filter(|c| *c == '*' || *c == '?').count();
    (pattern.len() - wild, std::cmp::Reverse(wild))
}

/// Hooks around a job execution.
pub trait JobExecutionListener: Send + Sync {
    /// Before the first step runs.
    fn before_job(&self, _job: &mut JobExecution) {}
    /// After the last step, with the final status; may change the exit status.
    fn after_job(&self, _job: &mut JobExecution) {}
}

/// A named flow of steps.
#[derive(Clone)]
pub struct Job {
    pub(crate) name: String,
    pub(crate) flow: Flow,
    pub(crate) listeners: Vec<Arc<dyn JobExecutionListener>>,
    rules: Option<ParameterRules>,
    validators: Vec<Arc<dyn JobParametersValidator>>,
    incrementer: Arc<dyn JobParametersIncrementer>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("flow", &self.flow)
            .field("rules", &self.rules)
            .finish()
    }
}

impl Job {
    /// A job named `name` (its JOB_NAME, part of the instance's identity) running `flow`.
    pub fn new(name: &str, flow: impl Into<Flow>) -> Self {
        Self {
            name: name.to_owned(),
            flow: flow.into(),
            listeners: Vec::new(),
            rules: None,
            validators: Vec::new(),
            incrementer: Arc::new(RunIdIncrementer::new()),
        }
    }

    /// The job's parameter keys: once declared, a launch missing a required key or
    /// giving an undeclared one is refused before anything is written. The keys of
    /// the job's incrementer (`run.id`) are accepted without being declared.
    pub fn parameters(mut self, rules: ParameterRules) -> Self {
        self.rules = Some(rules);
        self
    }

    /// A validator of the job's own, run after the parameter rules.
    pub fn validator(mut self, validator: impl JobParametersValidator + 'static) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// What gives the next parameters for `--next` (default: [`RunIdIncrementer`]).
    pub fn incrementer(mut self, incrementer: impl JobParametersIncrementer + 'static) -> Self {
        self.incrementer = Arc::new(incrementer);
        self
    }

    /// The declared parameter rules, if any.
    pub fn parameter_rules(&self) -> Option<&ParameterRules> {
        self.rules.as_ref()
    }

    /// Checks a launch's parameters against the rules and validators.
    pub fn validate(&self, parameters: &JobParameters) -> Result<(), InvalidParameters> {
        if let Some(rules) = &self.rules {
            rules
                .clone()
                .optional(self.incrementer.keys())
                .validate(parameters)?;
        }
        self.validators
            .iter()
            .try_for_each(|v| v.validate(parameters))
    }

    /// The parameters of the next instance after one that ran with `last`.
    pub fn next_parameters(&self, last: Option<&JobParameters>) -> JobParameters {
        self.incrementer.next(last)
    }

    /// Adds a listener to this job's executions.
    pub fn listener(mut self, listener: Arc<dyn JobExecutionListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// The JOB_NAME.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The steps and their transitions.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }
}

/// Anything that gives a job: a [`Job`], or the companion of a `#[job]` function.
pub trait IntoJob {
    /// The job.
    fn into_job(self) -> Job;
}

impl IntoJob for Job {
    fn into_job(self) -> Job {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(pattern_matches("*", "FAILED"));
        assert!(pattern_matches("COMPLETED*", "COMPLETED WITH SKIPS"));
        assert!(pattern_matches("F?ILED", "FAILED"));
        assert!(!pattern_matches("COMPLETED", "COMPLETED WITH SKIPS"));
        assert!(specificity("COMPLETED*") > specificity("*"));
        assert!(specificity("FAILED") > specificity("FAIL*"));
    }
}
