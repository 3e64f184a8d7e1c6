//! The questions people ask about TCP, answered by running them (`synack explain`).
//!
//! Each [scenario](scenarios) sets up real [`Stack`](crate::stack::Stack)s on a
//! [`SimNet`](crate::device::sim::SimNet) in virtual time, makes the interesting thing happen
//! (an old duplicate SYN, a SYN flood, a lost retransmission, a reader that stops reading…)
//! and returns an [`Explanation`]: the conversation in the notation of `synack demo` (the
//! trace [`Renderer`](crate::trace::Renderer)'s lines, with each state change beside the
//! packet that caused it), and beside each key event one sentence saying *why* it happens,
//! with the RFC section that says so.
//!
//! Nothing is staged. Every segment, state change, drop and note comes from the stacks' own
//! trace events; the scenario only decides which packets the network loses or holds back,
//! puts crafted packets on the wire (an old duplicate SYN, spoofed SYNs) and acts as the
//! applications. The sentences are attached by matching what happened (a SYN-ACK from the
//! server, a state change SYN-RECEIVED → LISTEN, a retransmission note…), so when the stack's
//! behaviour changes the output changes with it, and an expected event that did not happen is
//! listed in [`Explanation::missing`].
//!
//! Runs are deterministic: the same seed gives the same ports, ISNs and timestamps, line for
//! line. The explanations exist in English and Chinese ([`Lang`]).
//!
//! ```
//! use synack::sim::explain::{self, Lang};
//!
//! let e = explain::run("handshake", 1, Lang::En).unwrap();
//! assert!(e.missing.is_empty());
//! let text = e.render();
//! assert!(text.contains("[SYN, ACK]"));
//! assert!(text.contains("RFC 9293"));
//! // The same seed, the same conversation.
//! assert_eq!(text, explain::run("handshake", 1, Lang::En).unwrap().render());
//! ```
//!
//! The [`Step`]s keep what a picture needs (time, host, packet and its arrival, state changes,
//! the sentence), so an `Explanation` can be drawn as well as printed:
//! [`Explanation::to_svg`] draws each conversation as a ladder diagram, with the sentences as
//! numbered captions.

mod lab;
mod picture;
mod scenarios;
mod steps;
mod text;

use core::fmt;

pub use lab::{Happening, Transit};
pub use steps::{CwndChange, StateChange, Step, What, Why};
pub use text::Lang;

use lab::Lab;
use steps::{Builder, Rule};

/// Lines are wrapped to this many columns (the conversation lines are not).
const COLUMNS: usize = 100;

/// One scenario: its name, other names it answers to, and what it shows.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    summary: [&'static str; 2],
    run: fn(&mut Ctx) -> Result<(), String>,
}

impl Scenario {
    /// One line saying what the scenario shows.
    pub fn summary(&self, lang: Lang) -> &'static str {
        lang.pick(self.summary[0], self.summary[1])
    }
}

/// Every scenario, in the order a learner might take them.
pub fn scenarios() -> &'static [Scenario] {
    scenarios::ALL
}

/// The scenario called `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Scenario> {
    scenarios()
        .iter()
        .find(|s| s.name == name || s.aliases.contains(&name))
}

/// Why [`run`] gave no explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No scenario has that name.
    Unknown(String),
    /// The scenario could not be set up or did not get as far as it explains (a bug: the
    /// stacks did something the scenario does not allow for).
    Failed {
        scenario: &'static str,
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unknown(name) => {
                let names: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
                write!(
                    f,
                    "no scenario called {name:?}; there are: {}",
                    names.join(", ")
                )
            }
            Error::Failed { scenario, reason } => {
                write!(f, "scenario {scenario} failed: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Runs scenario `name` with `seed` and explains it in `lang`.
pub fn run(name: &str, seed: u64, lang: Lang) -> Result<Explanation, Error> {
    let s = find(name).ok_or_else(|| Error::Unknown(name.to_string()))?;
    let mut ctx = Ctx {
        lang,
        seed,
        title: String::new(),
        parts: Vec::new(),
        missing: Vec::new(),
    };
    (s.run)(&mut ctx).map_err(|reason| Error::Failed {
        scenario: s.name,
        reason,
    })?;
    Ok(Explanation {
        name: s.name,
        title: ctx.title,
        seed,
        lang,
        parts: ctx.parts,
        missing: ctx.missing,
    })
}

/// The list `synack explain` prints without a name: one line per scenario.
pub fn list(lang: Lang) -> String {
    let mut out = String::from(lang.pick(
        "synack explain NAME [--lang en|zh] [--seed N] [--svg FILE]: the questions people ask about TCP, answered by running them.\n\n",
        "synack explain 名称 [--lang en|zh] [--seed N] [--svg 文件]：关于 TCP 的常见问题，跑一遍就明白。\n\n",
    ));
    let width = scenarios().iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in scenarios() {
        let mut line = format!("  {:<width$}  {}", s.name, s.summary(lang));
        if !s.aliases.is_empty() {
            let aliases = s.aliases.join(", ");
            line.push_str(&match lang {
                Lang::En => format!(" (also {aliases})"),
                Lang::Zh => format!("（别名：{aliases}）"),
            });
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A scenario's run, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub name: &'static str,
    pub title: String,
    pub seed: u64,
    pub lang: Lang,
    pub parts: Vec<Part>,
    /// Ids of expected events that did not happen (each a sentence that found no line to
    /// explain). Empty when the stack behaves as the explanation says.
    pub missing: Vec<&'static str>,
}

/// A piece of an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A heading between conversations.
    Heading(String),
    /// A paragraph.
    Text(String),
    /// A conversation that ran. `elided` names the lines not shown (`Step::shown` false),
    /// which are replaced by one line saying how many.
    Steps {
        steps: Vec<Step>,
        elided: Option<String>,
    },
    /// A table, first row the header (the syn-flood counters side by side).
    Table(Vec<Vec<String>>),
    /// Preformatted lines: a figure that is narrated, not run.
    Figure(Vec<String>),
}

impl Explanation {
    /// Every step of every conversation, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> + '_ {
        self.parts.iter().flat_map(|p| match p {
            Part::Steps { steps, .. } => steps.as_slice(),
            _ => &[],
        })
    }

    /// The explanation as `synack explain` prints it.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        out.push(match self.lang {
            Lang::En => format!(
                "synack explain {}: {} (seed {})",
                self.name, self.title, self.seed
            ),
            Lang::Zh => format!(
                "synack explain {}：{}（种子 {}）",
                self.name, self.title, self.seed
            ),
        });
        for p in &self.parts {
            out.push(String::new());
            match p {
                Part::Heading(h) => out.push(format!("── {h} ──")),
                Part::Text(t) => out.extend(text::wrap(t, COLUMNS, "")),
                Part::Figure(lines) => out.extend(lines.iter().map(|l| format!("    {l}"))),
                Part::Table(rows) => out.extend(table(rows)),
                Part::Steps { steps, elided } => {
                    let mut hidden = 0;
                    for s in steps {
                        if !s.shown {
                            hidden += 1;
                            continue;
                        }
                        if hidden > 0 {
                            out.push(elision(hidden, elided.as_deref(), self.lang));
                            hidden = 0;
                        }
                        out.push(s.line.clone());
                        if let Some(w) = &s.why {
                            // The citation never breaks across lines.
                            let cite = w.cite.replace(' ', "\u{a0}");
                            // Chinese sentences end in a full-width stop: no space before.
                            let gap = if self.lang == Lang::Zh { "" } else { " " };
                            let t = format!("\u{21b3} {}{gap}[{cite}]", w.text);
                            let mut lines: Vec<String> = text::wrap(&t, COLUMNS, "      ")
                                .into_iter()
                                .map(|l| l.replace('\u{a0}', " "))
                                .collect();
                            if let Some(first) = lines.first_mut() {
                                *first = format!("    {}", first.trim_start());
                            }
                            out.extend(lines);
                        }
                    }
                    if hidden > 0 {
                        out.push(elision(hidden, elided.as_deref(), self.lang));
                    }
                }
            }
        }
        if !self.missing.is_empty() {
            out.push(String::new());
            out.push(format!(
                "{} {}",
                self.lang.pick(
                    "note: these expected events did not happen, so their explanations are missing:",
                    "注意：以下预期事件没有发生，相应的解释缺失："
                ),
                self.missing.join(", ")
            ));
        }
        let mut s = out.join("\n");
        s.push('\n');
        s
    }
}

fn elision(n: usize, what: Option<&str>, lang: Lang) -> String {
    match what {
        Some(w) => format!("    \u{2026} {n} {w}"),
        None => format!(
            "    \u{2026} {n} {}",
            lang.pick("more lines not shown", "行未显示")
        ),
    }
}

/// Columns padded to the widest cell (Chinese characters counted as two columns).
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| text::width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::from("    ");
            for (c, cell) in r.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < r.len() {
                    line.push_str(&" ".repeat(widths[c] - text::width(cell) + 3));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// How a conversation is shown.
#[derive(Default)]
pub(crate) struct View<'a> {
    /// Sequence numbers as on the wire rather than relative to the ISNs.
    pub absolute: bool,
    /// Lines this rejects are not printed but counted…
    pub show: Option<&'a dyn Fn(&Step) -> bool>,
    /// …under this label (English, Chinese).
    pub elided: Option<(&'static str, &'static str)>,
}

/// What a scenario writes its explanation into.
pub(crate) struct Ctx {
    pub lang: Lang,
    pub seed: u64,
    title: String,
    parts: Vec<Part>,
    missing: Vec<&'static str>,
}

impl Ctx {
    /// `en` or `zh`, whichever language this explanation is in.
    pub fn t(&self, en: &'static str, zh: &'static str) -> &'static str {
        self.lang.pick(en, zh)
    }

    pub fn title(&mut self, en: &'static str, zh: &'static str) {
        self.title = self.t(en, zh).to_string();
    }

    pub fn text(&mut self, en: &'static str, zh: &'static str) {
        let t = self.t(en, zh).to_string();
        self.parts.push(Part::Text(t));
    }

    pub fn heading(&mut self, en: &'static str, zh: &'static str) {
        let t = self.t(en, zh).to_string();
        self.parts.push(Part::Heading(t));
    }

    /// A figure whose lines are `en` or `zh`.
    pub fn figure(&mut self, en: &[&str], zh: &[&str]) {
        let lines = match self.lang {
            Lang::En => en,
            Lang::Zh => zh,
        };
        self.parts
            .push(Part::Figure(lines.iter().map(|l| l.to_string()).collect()));
    }

    pub fn table(&mut self, rows: Vec<Vec<String>>) {
        self.parts.push(Part::Table(rows));
    }

    /// The lab's conversation with `rules`' sentences; every line shown.
    pub fn conversation(&mut self, lab: Lab, rules: &[Rule]) -> &[Step] {
        self.conversation_with(lab, rules, View::default())
    }

    /// [`conversation`](Self::conversation) with sequence numbers as on the wire.
    pub fn absolute_conversation(&mut self, lab: Lab, rules: &[Rule]) -> &[Step] {
        let view = View {
            absolute: true,
            ..View::default()
        };
        self.conversation_with(lab, rules, view)
    }

    /// The lab's conversation with `rules`' sentences, shown as `view` says.
    pub fn conversation_with(&mut self, lab: Lab, rules: &[Rule], view: View<'_>) -> &[Step] {
        let View {
            absolute,
            show,
            elided,
        } = view;
        let names = lab.names();
        let mut steps = Builder::new(self.lang, &names, absolute).build(&lab.into_records());
        if let Some(show) = show {
            for s in steps.iter_mut() {
                s.shown = show(s);
            }
        }
        self.missing
            .extend(steps::explain(&mut steps, rules, self.lang));
        self.parts.push(Part::Steps {
            steps,
            elided: elided.map(|(en, zh)| self.lang.pick(en, zh).to_string()),
        });
        match self.parts.last() {
            Some(Part::Steps { steps, .. }) => steps,
            _ => &[],
        }
    }
}
