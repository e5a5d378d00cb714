//! Jobs and their flows: which step runs after which.
//!
//! A flow is a graph of steps. After a step, its exit code is matched against the
//! transitions declared from it (`on("FAILED").to(cleanup)`, `*` and `?` wildcards, the
//! most specific pattern winning); with no match, a COMPLETED step goes on to the step
//! declared with [`FlowBuilder::next`] (or ends the job COMPLETED), and any other
//! status ends the job with that status, as Spring Batch's sequential jobs do.

use std::fmt;
use std::sync::Arc;

use crate::execution::{BatchStatus, ExitStatus, JobExecution, StepExecution};
use crate::incrementer::{JobParametersIncrementer, RunIdIncrementer};
use crate::params::JobParameters;
use crate::step::builder::{IntoStep, StepDef};
use crate::validate::{InvalidParameters, JobParametersValidator, ParameterRules};

/// Where a transition leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Step(usize),
    /// End the job with this status (COMPLETED, FAILED or STOPPED), and this exit code
    /// when one was given (else the status's own).
    End(BatchStatus, Option<String>),
    /// Stop the job (STOPPED); its restart begins at this node (Spring's
    /// `stopAndRestart`).
    StopAndRestart(usize),
}

/// Decides where a flow goes next from what has run so far (Spring's
/// `JobExecutionDecider`): the code it returns is matched by the decider's
/// transitions (`on(pattern)`) like a step's exit code.
pub trait JobExecutionDecider: Send + Sync {
    /// The decider's name, unique in the flow.
    fn name(&self) -> &str;
    /// The code that picks the transition, from the job execution and the last step
    /// execution (none when the decider comes first).
    fn decide(&self, job: &JobExecution, last_step: Option<&StepExecution>) -> String;
}

/// A decider from a name and a function.
pub fn decider<F>(name: &str, decide: F) -> Arc<dyn JobExecutionDecider>
where
    F: Fn(&JobExecution, Option<&StepExecution>) -> String + Send + Sync + 'static,
{
    struct FnDecider<F>(String, F);
    impl<F> JobExecutionDecider for FnDecider<F>
    where
        F: Fn(&JobExecution, Option<&StepExecution>) -> String + Send + Sync,
    {
        fn name(&self) -> &str {
            &self.0
        }
        fn decide(&self, job: &JobExecution, last_step: Option<&StepExecution>) -> String {
            (self.1)(job, last_step)
        }
    }
    Arc::new(FnDecider(name.to_owned(), decide))
}

/// What a node of a flow runs: a step, or a decider choosing the next transition.
#[derive(Clone)]
pub(crate) enum NodeKind {
    Step(StepDef),
    Decider(Arc<dyn JobExecutionDecider>),
    /// Flows run concurrently, the split ending when all have (Spring's `split`).
    Split(Arc<str>, Arc<[Flow]>),
}

impl NodeKind {
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Step(step) => step.name(),
            Self::Decider(decider) => decider.name(),
            Self::Split(name, _) => name,
        }
    }
}

impl fmt::Debug for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step(step) => f.debug_tuple("Step").field(&step.name()).finish(),
            Self::Decider(decider) => f.debug_tuple("Decider").field(&decider.name()).finish(),
            Self::Split(name, flows) => f
                .debug_struct("Split")
                .field("name", name)
                .field("flows", &flows.len())
                .finish(),
        }
    }
}

/// The job context key under which a job stopped by `stop_and_restart` keeps the
/// node its restart begins at.
pub(crate) const RESTART_AT: &str = "batch.flow.restartAt";

#[derive(Debug, Clone)]
pub(crate) struct Transition {
    pub(crate) pattern: String,
    pub(crate) target: Target,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
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
        b.current = b.node(NodeKind::Step(step.into_step()));
        b
    }

    /// Starts a flow with a decider.
    pub fn start_decider(decider: Arc<dyn JobExecutionDecider>) -> FlowBuilder {
        let mut b = FlowBuilder {
            nodes: Vec::new(),
            current: 0,
        };
        b.current = b.node(NodeKind::Decider(decider));
        b
    }

    /// Starts a flow with a split: `flows` run concurrently, and the flow goes on once
    /// all have ended (Spring's `split(executor).add(flows…)`), the split's status the
    /// most severe of theirs (see [`split`](crate::split)).
    pub fn start_split(name: &str, flows: impl IntoIterator<Item = Flow>) -> FlowBuilder {
        let mut b = FlowBuilder {
            nodes: Vec::new(),
            current: 0,
        };
        b.current = b.node(NodeKind::Split(name.into(), flows.into_iter().collect()));
        b
    }

    /// The steps in the order they were declared, those of splits' flows included.
    pub fn steps(&self) -> impl Iterator<Item = &StepDef> {
        let mut steps = Vec::new();
        for n in &self.nodes {
            match &n.kind {
                NodeKind::Step(step) => steps.push(step),
                NodeKind::Decider(_) => {}
                NodeKind::Split(_, flows) => steps.extend(flows.iter().flat_map(Flow::steps)),
            }
        }
        steps.into_iter()
    }

    /// The node of the step or decider named `name`.
    pub(crate) fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.kind.name() == name)
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
            .max_by(|a, b| specificity(&a.pattern, &b.pattern));
        if let Some(t) = best {
            return (t.target.clone(), true);
        }
        let target = match (status, n.next) {
            (BatchStatus::Completed, Some(next)) => Target::Step(next),
            (BatchStatus::Completed, None) => Target::End(BatchStatus::Completed, None),
            (BatchStatus::Stopped | BatchStatus::Stopping, _) => {
                Target::End(BatchStatus::Stopped, None)
            }
            _ => Target::End(BatchStatus::Failed, None),
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
    fn node(&mut self, kind: NodeKind) -> usize {
        if let Some(i) = self.nodes.iter().position(|n| n.kind.name() == kind.name()) {
            return i;
        }
        self.nodes.push(Node {
            kind,
            transitions: Vec::new(),
            next: None,
        });
        self.nodes.len() - 1
    }

    /// After the current step completes, run `step`; it becomes the current step.
    ///
    /// # Panics
    /// If `step` is already in the flow and going on with `next` from it would come
    /// back to it with no transition to leave the loop (`.next(s2).next(s2)`, or
    /// `.next(a)` after `a` … `b`): such a flow would run forever once its steps
    /// complete. Give a second run of a step its own name, or leave the loop with a
    /// transition (`on("COMPLETED")`).
    pub fn next(self, step: impl IntoStep) -> Self {
        self.next_node(NodeKind::Step(step.into_step()))
    }

    /// After the current step completes, ask `decider` where to go; declare its
    /// transitions with `on(code)` (it becomes the current node).
    pub fn next_decider(self, decider: Arc<dyn JobExecutionDecider>) -> Self {
        self.next_node(NodeKind::Decider(decider))
    }

    /// After the current node completes, run `flows` concurrently (Spring's `split`);
    /// the split, named `name`, becomes the current node: its transitions (`on`) match
    /// the aggregated exit code (see [`split`](crate::split)).
    pub fn split(self, name: &str, flows: impl IntoIterator<Item = Flow>) -> Self {
        self.next_node(NodeKind::Split(name.into(), flows.into_iter().collect()))
    }

    fn next_node(mut self, kind: NodeKind) -> Self {
        let name = kind.name().to_owned();
        let i = self.node(kind);
        self.nodes[self.current].next = Some(i);
        if let Some(cycle) = self.endless_loop(i) {
            panic!(
                "flow: `next({name})` makes the steps {} run in a loop that never ends once they complete; give the second run of `{name}` its own name (a step of another name), or leave the loop with a transition",
                cycle.join(" → ")
            );
        }
        self.current = i;
        self
    }

    /// The steps of a loop of `next` links through `start` that no transition can
    /// leave, if there is one.
    fn endless_loop(&self, start: usize) -> Option<Vec<String>> {
        let mut path = vec![start];
        let mut at = start;
        while let Some(next) = self.nodes[at].next {
            if next == start {
                let names = path.iter().chain([&start]);
                let names = names.map(|&n| format!("`{}`", self.nodes[n].kind.name()));
                let leaves = path.iter().any(|&n| !self.nodes[n].transitions.is_empty());
                return (!leaves).then(|| names.collect());
            }
            if path.contains(&next) {
                return None;
            }
            path.push(next);
            at = next;
        }
        None
    }

    /// A transition from the current step for exit codes matching `pattern` (`*` any
    /// run of characters, `?` one character).
    ///
    /// An empty pattern matches every exit code, as `*` does (Spring's rule).
    pub fn on(self, pattern: &str) -> TransitionBuilder {
        let pattern = if pattern.is_empty() { "*" } else { pattern };
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
    pub fn from(self, step: impl IntoStep) -> Self {
        let name = step.into_step().name().to_owned();
        self.make_current(&name)
    }

    /// Makes an already declared decider current, to declare its transitions.
    ///
    /// # Panics
    /// If no decider of that name was declared.
    pub fn from_decider(self, decider: &Arc<dyn JobExecutionDecider>) -> Self {
        let name = decider.name().to_owned();
        self.make_current(&name)
    }

    fn make_current(mut self, name: &str) -> Self {
        self.current = self
            .nodes
            .iter()
            .position(|n| n.kind.name() == name)
            .unwrap_or_else(|| {
                panic!("flow: `from({name})` names a step that is not in the flow yet")
            });
        self
    }

    /// Finishes the flow.
    pub fn build(self) -> Flow {
        Flow { nodes: self.nodes }
    }

    /// Finishes the flow: Spring's `end()` on a flow builder, the same as
    /// [`build`](Self::build).
    pub fn end(self) -> Flow {
        self.build()
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
        let i = self.flow.node(NodeKind::Step(step.into_step()));
        let mut flow = self.add(Target::Step(i));
        flow.current = i;
        flow
    }

    /// Go to `decider`, which becomes the current node.
    pub fn to_decider(mut self, decider: Arc<dyn JobExecutionDecider>) -> FlowBuilder {
        let i = self.flow.node(NodeKind::Decider(decider));
        let mut flow = self.add(Target::Step(i));
        flow.current = i;
        flow
    }

    /// End the job COMPLETED.
    pub fn end(self) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Completed, None))
    }

    /// End the job COMPLETED with the exit code `code` (Spring's `end(String)`).
    pub fn end_with(self, code: &str) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Completed, Some(code.to_owned())))
    }

    /// End the job FAILED (it can be restarted).
    pub fn fail(self) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Failed, None))
    }

    /// End the job FAILED with the exit code `code`.
    pub fn fail_with(self, code: &str) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Failed, Some(code.to_owned())))
    }

    /// End the job STOPPED (it can be restarted).
    pub fn stop(self) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Stopped, None))
    }

    /// End the job STOPPED with the exit code `code`.
    pub fn stop_with(self, code: &str) -> FlowBuilder {
        self.add(Target::End(BatchStatus::Stopped, Some(code.to_owned())))
    }

    /// Stop the job (STOPPED); its restart begins at `step` (Spring's
    /// `stopAndRestart`), which becomes the current step.
    pub fn stop_and_restart(mut self, step: impl IntoStep) -> FlowBuilder {
        let i = self.flow.node(NodeKind::Step(step.into_step()));
        let mut flow = self.add(Target::StopAndRestart(i));
        flow.current = i;
        flow
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

/// Which of two patterns is the more specific (`Greater`: `a`), in the order of
/// Spring Batch's `DefaultStateTransitionComparator`: a pattern without `*` is more
/// specific than one with; of two with `*`, the one with more `*` (`**` over `*`); then
/// the one with fewer `?` (`COMPLETED_?ARTIALLY` over `COMPLETED_*ARTIALLY`, which the
/// first rule already decides); then, among wildcard patterns, the longer one; last,
/// the alphabetically smaller one.
fn specificity(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a == b {
        return Ordering::Equal;
    }
    let count = |p: &str, c: char| p.chars().filter(|x| *x == c).count();
    let (a_star, b_star) = (count(a, '*'), count(b, '*'));
    match (a_star, b_star) {
        (0, 1..) => return Ordering::Greater,
        (1.., 0) => return Ordering::Less,
        (1.., 1..) if a_star != b_star => return a_star.cmp(&b_star),
        _ => {}
    }
    let (a_q, b_q) = (count(a, '?'), count(b, '?'));
    if a_q != b_q {
        return b_q.cmp(&a_q);
    }
    if a.len() != b.len() && (a_star > 0 || a_q > 0) {
        return a.len().cmp(&b.len());
    }
    b.cmp(a)
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
        use std::cmp::Ordering::Greater;
        assert_eq!(specificity("COMPLETED*", "*"), Greater);
        assert_eq!(specificity("FAILED", "FAIL*"), Greater);
    }

    /// Spring's `DefaultStateTransitionComparatorTests`: bar > foo > fo? > bar?? >
    /// foo?? > ?0? > ??? > *foo* > *f* > foo* > *, and `**` over `*`.
    #[test]
    fn patterns_are_ordered_as_spring_orders_them() {
        use std::cmp::Ordering::{Greater, Less};
        let order = [
            "bar", "foo", "fo?", "bar??", "foo??", "?0?", "???", "*foo*", "*f*", "foo*", "*",
        ];
        for pair in order.windows(2) {
            assert_eq!(specificity(pair[0], pair[1]), Greater, "{pair:?}");
            assert_eq!(specificity(pair[1], pair[0]), Less, "{pair:?}");
        }
        assert_eq!(specificity("**", "*"), Greater);
        assert_eq!(specificity("CONTINUABLE", "CONTIN???LE"), Greater);
        assert_eq!(
            specificity("COMPLETED_?ARTIALLY", "COMPLETED_*ARTIALLY"),
            Greater
        );
        assert_eq!(
            specificity("COMPLETED_*ARTIALLY", "COMPLETED_?ARTIALLY"),
            Less
        );
    }
}
