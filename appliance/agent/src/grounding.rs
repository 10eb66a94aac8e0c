//! The grounding check: every figure, day and name in a reply must come from the facts given for
//! this question, or the reply is not spoken.
//!
//! A small model told "never invent prices" still answers "How much is a water softener?" with a
//! price, often a real one borrowed from another service. The prompt cannot prevent that; code
//! can check it. [`Evidence`] is built per turn from the facts that passed the relevance gate for
//! *this* question (so a true figure from an unrelated fact is not evidence), plus text the
//! agent may always say (its own prompt and greeting: the business's name). [`check`] then finds
//! the first claim in the reply that the evidence does not state:
//! - **figures**: prices, times, counts, phone numbers, in digits or words (`$1,100`, `eleven
//!   hundred`, `9:30`, `twenty-four`), compared as numbers;
//! - **days**: a weekday the facts do not name (ranges like "Monday to Friday" and words like
//!   "weekends" count for every day they cover), except in a negative sentence ("we're closed on
//!   Sundays" when the facts give hours for Monday to Saturday); and a day said the other way
//!   round from the facts ("we're open on Sunday" where a fact says "Sunday: closed", or "we're
//!   closed on Saturday" where the facts only give Saturday's hours);
//! - **names**: a capitalised word inside a sentence (a person, a brand, a place, a month) that
//!   neither the facts nor the agent's own text contain.
//!
//! After the reply, [`adds_nothing`] catches the non-answer: a wh-question answered only in its
//! own words ("Which brand do you install?" — "We install tankless water heaters.").
//!
//! Before the model is asked at all, [`uncovered`] catches the invented yes/no answer: a yes/no
//! question ("Do you lend ladders?") about something no fact for it names gets the
//! don't-know line, because the facts cannot say yes or no to it, whatever the model would say.
//!
//! Not checked: the polarity of a yes/no answer about something the facts do name, and
//! paraphrased policies. Pure functions, no model: the tables of cases below are the contract.

use std::collections::HashSet;

/// A claim in a reply that the evidence does not state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A number (normalised: `1100`, `9:30`, `12.5`).
    Figure(String),
    /// A day of the week.
    Day(&'static str),
    /// A capitalised word: a person, brand, place or month.
    Name(String),
    /// Nothing: an answer to a wh-question made only of the question's own words ("Which brand
    /// do you install?" answered "We install tankless water heaters."), a non-answer that the
    /// caller would take for one.
    Nothing,
}

impl Claim {
    /// `figure`, `day` or `name`: what a log line may show of it.
    pub fn kind(&self) -> &'static str {
        match self {
            Claim::Figure(_) => "figure",
            Claim::Day(_) => "day",
            Claim::Name(_) => "name",
            Claim::Nothing => "nothing",
        }
    }
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Claim::Figure(n) => write!(f, "figure {n}"),
            Claim::Day(d) => write!(f, "day {d}"),
            Claim::Name(n) => write!(f, "name {n}"),
            Claim::Nothing => write!(f, "nothing new"),
        }
    }
}

/// What a reply may state on this turn.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    figures: HashSet<String>,
    /// Days named in a positive clause of the facts ("Saturday 9 am to 1 pm")…
    open_days: HashSet<&'static str>,
    /// …and in a negative one ("Sunday: closed").
    closed_days: HashSet<&'static str>,
    /// Lower-cased words of the facts and of the agent's own text.
    words: HashSet<String>,
    /// The facts' figures by the days they are said for ([`segments`]).
    day_figures: Vec<Segment>,
    /// Figures the caller said.
    callers_figures: HashSet<String>,
    /// The caller's turn asked something: their figures are then what is asked about, not a
    /// given, wherever a day is said with them ("open at 8 on Saturday?").
    caller_asked: bool,
    /// The days the caller asked about: a reply piece that names one of them states that day's
    /// figures, whatever other days it names beside.
    asked_days: Vec<&'static str>,
}

/// Days and the figures said with them, up to the next day named.
#[derive(Debug, Clone, Default, PartialEq)]
struct Segment {
    days: Vec<&'static str>,
    figures: Vec<String>,
}

impl Evidence {
    /// Evidence from this turn's facts, plus `known`: text the agent may always repeat (its
    /// prompt and greeting), whose words count for names but whose figures and days do not.
    pub fn new<'a>(facts: impl IntoIterator<Item = &'a str>, known: &str) -> Self {
        let mut evidence = Evidence::default();
        for fact in facts {
            evidence.figures.extend(figures(fact));
            for clause in fact.split(['\n', ';', '.', ',']) {
                let set = if is_negative(clause) {
                    &mut evidence.closed_days
                } else {
                    &mut evidence.open_days
                };
                set.extend(days(clause, true));
            }
            evidence.words.extend(words(fact).map(str::to_lowercase));
            evidence.day_figures.extend(segments(fact));
        }
        evidence.words.extend(words(known).map(str::to_lowercase));
        evidence
    }

    /// Adds what the caller said: a reply may repeat the caller's own figures and names ("a five
    /// by ten unit is …"), but never as an amount of money ("my ten-year-old" is no "$10 per
    /// night"); on a turn that asks nothing the caller's days count too ("Tuesday at 3, noted"),
    /// while a day in a question ("are you open on Sunday?") is no evidence of opening.
    pub fn with_caller_words(mut self, text: &str, asks: bool) -> Self {
        self.callers_figures.extend(figures(text));
        self.caller_asked = asks;
        if asks {
            self.asked_days = days(text, true);
        } else {
            self.open_days.extend(days(text, true));
        }
        self.words.extend(words(text).map(str::to_lowercase));
        self
    }
}

/// The first claim of `reply` the evidence does not state, if any. Check the whole reply so far
/// (not a chunk alone), so sentence starts are known.
pub fn check(reply: &str, evidence: &Evidence) -> Option<Claim> {
    let money = money(reply);
    for figure in figures(reply) {
        let callers = evidence.callers_figures.contains(&figure) && !money.contains(&figure);
        if !evidence.figures.contains(&figure) && !callers {
            return Some(Claim::Figure(figure));
        }
    }
    for sentence in split_sentences(reply) {
        // Negation is judged per clause: "No problem, we're open on Saturday".
        for clause in sentence
            .split([',', ';', ':'])
            .flat_map(|c| c.split(" but "))
        {
            let negative = is_negative(clause);
            for day in days(clause, false) {
                let open = evidence.open_days.contains(day);
                let closed = evidence.closed_days.contains(day);
                // Facts that say both ("Sunday: closed for appointments", "Sunday call-out:
                // $150") leave the day to the model.
                let contradicted = if negative { open && !closed } else { !open };
                if contradicted {
                    return Some(Claim::Day(day));
                }
            }
        }
        // The figures said for a day must be that day's: "Saturday is 8 to 6" where the facts give
        // 8 to 6 for weekdays and 9 to 1 for Saturday states two true facts and a false answer.
        // The caller's figures are exempt only when they stated them ("Tuesday at 3, noted"),
        // not when they asked ("are you open at 8 on Saturday?" is no evidence of 8).
        // Hours with no day said, in answer to a day's question, are given as that day's.
        let mut pieces = segments(sentence);
        if pieces.is_empty() && !evidence.asked_days.is_empty() && is_time_of_day(sentence) {
            pieces.push(Segment {
                days: evidence.asked_days.clone(),
                figures: figures(sentence),
            });
        }
        for segment in pieces {
            let own: Vec<&String> = segment
                .figures
                .iter()
                .filter(|f| evidence.caller_asked || !evidence.callers_figures.contains(*f))
                .collect();
            if segment.days.is_empty() || own.is_empty() {
                continue;
            }
            // "Saturday's hours are Monday to Thursday 8 to 6" answers the Saturday question with
            // another day's figures: a piece naming an asked day must hold that day's.
            let asked: Vec<&str> = segment
                .days
                .iter()
                .copied()
                .filter(|d| evidence.asked_days.contains(d))
                .collect();
            let said_for = if asked.is_empty() {
                segment.days.clone()
            } else {
                asked
            };
            let supported = evidence.day_figures.iter().any(|fact| {
                fact.days.iter().any(|d| said_for.contains(d))
                    && own.iter().all(|f| fact.figures.contains(f))
            });
            if !supported {
                return Some(Claim::Figure(own[0].clone()));
            }
        }
        for name in names(sentence) {
            let name_only = name.trim_end_matches("'s").trim_end_matches("’s");
            if !evidence.words.contains(&name_only.to_lowercase()) {
                return Some(Claim::Name(name.to_owned()));
            }
        }
    }
    None
}

/// The figures of `text` that are amounts: after `$`, or before `%` or the words "dollars",
/// "cents", "percent" (whole words: "the centre opens at 9" states no amount).
fn money(text: &str) -> HashSet<String> {
    let lower = text.to_lowercase();
    let mut out = HashSet::new();
    for (at, _) in lower.match_indices('$') {
        out.extend(figures(&lower[at + 1..]).into_iter().take(1));
    }
    for (at, _) in lower.match_indices('%') {
        out.extend(figures(&lower[..at]).pop());
    }
    for (at, word) in ascii_words(&lower) {
        if matches!(word, "dollar" | "dollars" | "cent" | "cents" | "percent") {
            out.extend(figures(&lower[..at]).pop());
        }
    }
    out
}

/// `text` cut where a clause names a day: each piece holds the days it names (ranges expanded) and
/// the figures said until the next day is named. Clauses before any day are left out.
fn segments(text: &str) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for clause in text.split(['\n', ';', ',']).flat_map(day_pieces) {
        let named = days(clause, true);
        if !named.is_empty() {
            out.push(Segment {
                days: named,
                figures: Vec::new(),
            });
        }
        if let Some(current) = out.last_mut() {
            current.figures.extend(figures(clause));
        }
    }
    out
}

/// Whether `sentence` speaks of times of day ("8 am to 6 pm", "9 o'clock", "noon").
fn is_time_of_day(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    ascii_words(&lower)
        .iter()
        .any(|(_, w)| matches!(*w, "am" | "pm" | "noon" | "midnight" | "clock"))
        || lower.contains("a.m")
        || lower.contains("p.m")
}

/// `clause` cut before each day named after another day's figures: a list flattened onto one
/// line ("Monday to Thursday: 8 am to 6 pm - Friday: 8 am to 4 pm - Saturday: 9 am to 1 pm", as
/// a fact's lines are joined) is one piece per day, while "Monday to Friday" stays together and
/// "open 8 to 6 Monday to Friday" keeps its figures.
fn day_pieces(clause: &str) -> Vec<&str> {
    let lower = clause.to_lowercase();
    if lower.len() != clause.len() {
        // Lower-casing moved the offsets: leave the clause whole.
        return vec![clause];
    }
    let mut pieces = Vec::new();
    let (mut start, mut last_day_end) = (0, None);
    for (at, word) in ascii_words(&lower) {
        let is_day = !days(word, true).is_empty();
        if !is_day {
            continue;
        }
        if let Some(end) = last_day_end {
            if !figures(&lower[end..at]).is_empty() {
                pieces.push(&clause[start..at]);
                start = at;
            }
        }
        last_day_end = Some(at + word.len());
    }
    pieces.push(&clause[start..]);
    pieces
}

/// For a yes/no question, the first of its content words (not `FUNCTION_WORDS`) that no fact
/// names, compared by stem ("trucks" matches "truck"): the facts cannot say yes or no about a
/// thing they do not name ("Do you lend ladders?"). One odd word is enough; allowing one
/// in three (measured on the tuning halves) turned refusals into wrong yes/no answers and let
/// "Do you offer a discount for military families?" be answered "No". Other questions are not
/// judged here: "What hours can I get in?" is answered by facts that never say "hours".
///
/// Verbs count: "Can I launch my own boat from your dock?" is not answered by facts about the
/// dock's kayaks. Skipping every verb after a subject pronoun was measured and dropped: it
/// answered that question "yes" and fixed none.
pub fn uncovered<'a>(question: &'a str, facts: &[&str]) -> Option<&'a str> {
    let first = words(question).next()?.to_lowercase();
    if !YES_NO_OPENERS.contains(&first.as_str()) {
        return None;
    }
    let named: HashSet<String> = facts
        .iter()
        .flat_map(|f| f.split(|c: char| !c.is_alphanumeric()))
        .map(stem)
        .collect();
    question
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| w.len() >= 3 && !w.contains('\''))
        .filter(|w| {
            let w = w.to_lowercase();
            !FUNCTION_WORDS.split_whitespace().any(|f| f == w)
        })
        .find(|w| !named.contains(&stem(w)))
}

/// Whether `reply` answers the wh-question `question` ("which", "what", "when", "who", "where",
/// "how") with none but the question's own content words: the model restated what was asked
/// because the facts do not hold it. A figure, a name or any other word of its own is an
/// answer, right or wrong, for [`check`] to judge; yes/no questions are [`uncovered`]'s.
pub fn adds_nothing(question: &str, reply: &str) -> bool {
    let opener = words(question).next().map(str::to_lowercase);
    let opener = opener
        .as_deref()
        .map(|w| w.split(['\'', '’']).next().unwrap_or(w));
    if !opener.is_some_and(|w| WH_OPENERS.contains(&w)) {
        return false;
    }
    let content = |text: &str| -> HashSet<String> {
        text.split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| w.chars().all(|c| c.is_ascii_digit()) || w.len() >= 3)
            .filter(|w| !w.contains('\''))
            .map(str::to_lowercase)
            .filter(|w| !FUNCTION_WORDS.split_whitespace().any(|f| f == w))
            .map(|w| stem(&w))
            .collect()
    };
    let asked = content(question);
    let said = content(reply);
    !reply.trim().is_empty() && said.is_subset(&asked)
}

/// How wh-questions start.
const WH_OPENERS: &[&str] = &[
    "what", "which", "when", "who", "whom", "whose", "where", "how",
];

/// How yes/no questions start.
const YES_NO_OPENERS: &[&str] = &[
    "do", "does", "did", "is", "are", "was", "can", "could", "will", "would", "may", "should",
    "have", "has", "shall",
];

/// Words that carry no topic of their own: a question is about its other words. Then the
/// verbs of what any business does ("Do you rent moving trucks?" is about the trucks): only
/// those seen in the tuning halves' questions or in no evaluation question at all.
const FUNCTION_WORDS: &str = "\
the and but for nor yet you your yours our ours they them their she her his him its this that \
these those who whom what which when where why how does did are was were can could will would \
may might should shall must have has had been being there here with without from into onto \
about any some all each every also too very just only still then than not yes please thanks \
thank okay get got give take make need want like let use come going able allowed one ones \
someone somebody anyone anybody everyone everybody something anything everything nothing nobody \
thing things way few several lot lots little back along much many more most other own same such out over \
off after before during while again ever now today tomorrow per via offer available \
possible ok do is it an in on at to of or if my me we us be by so up as no go bring keep put \
help know tell say see look find work works used using usually really always never sure \
charge charges cost costs price pay fee fees open allow book install rent \
service teach include included free extra";

/// A crude stem for matching words across forms: lower case, the plural dropped, then a verb
/// ending, then a final e, at most six letters ("fillings" and "filling", "prices" and "price",
/// "cancelled" and "cancellation", "families" and "family").
fn stem(word: &str) -> String {
    let mut w = word.to_lowercase();
    if let Some(root) = w.strip_suffix("ies").filter(|r| r.len() >= 2) {
        w = format!("{root}y");
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w.pop();
    }
    if let Some(root) = ["ing", "ed"]
        .iter()
        .find_map(|end| w.strip_suffix(end).filter(|r| r.len() >= 3))
    {
        w = root.to_owned();
    }
    if w.len() > 3 && w.ends_with('e') {
        w.pop();
    }
    w.chars().take(6).collect()
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Capitalised words that are not claims.
const COMMON_CAPITALISED: &[&str] = &[
    "i", "i'm", "i'll", "i'd", "i've", "ok", "okay", "mr", "mrs", "ms", "dr", "am", "pm", "a.m",
    "p.m", "a", "m", "p", "sir", "madam",
];

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Every number in `text`, normalised: digits (`$1,100.00` → `1100`, `9:00` → `9`, `9:30`,
/// `12.50` → `12.5`) and number words (`twenty-four` → `24`, `one hundred and fifty` → `150`). A
/// lone "one" is an article more often than a count ("one of our staff") and is left out.
fn figures(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    // (where it starts, value), sorted at the end: the figures in the order they are said.
    let mut out: Vec<(usize, String)> = Vec::new();
    let chars: Vec<(usize, char)> = lower.char_indices().collect();
    let digit = |i: usize| chars.get(i).is_some_and(|(_, c)| c.is_ascii_digit());
    let mut i = 0;
    while i < chars.len() {
        if digit(i) {
            let start = i;
            while digit(i)
                || (chars
                    .get(i)
                    .is_some_and(|(_, c)| matches!(c, '.' | ',' | ':'))
                    && digit(i + 1))
            {
                i += 1;
            }
            let raw: String = chars[start..i].iter().map(|(_, c)| c).collect();
            out.push((chars[start].0, normalise_digits(&raw)));
        } else {
            i += 1;
        }
    }
    let spans = ascii_words(&lower);
    let tokens: Vec<&str> = spans.iter().map(|(_, w)| *w).collect();
    let mut k = 0;
    while k < tokens.len() {
        let (value, used) = number_words(&tokens[k..]);
        if used == 0 {
            k += 1;
            continue;
        }
        // A spoken clock time: "seven thirty" is 7:30, as the facts write it.
        let (minutes, more) = match number_words(&tokens[k + used..]) {
            (m, n) if n > 0 && (1..=12).contains(&value) && (10..60).contains(&m) => (Some(m), n),
            _ => (None, 0),
        };
        let at = spans[k].0;
        match minutes {
            Some(m) => out.push((at, format!("{value}:{m:02}"))),
            None if used == 1 && tokens[k] == "one" => {}
            None => out.push((at, value.to_string())),
        }
        k += used + more;
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, figure)| figure).collect()
}

/// The runs of ASCII letters in `text`, with the byte offsets they start at.
fn ascii_words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_alphabetic(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                out.push((from, &text[from..at]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn normalise_digits(raw: &str) -> String {
    if let Some((hours, minutes)) = raw.split_once(':') {
        let hours = hours.trim_start_matches('0');
        let hours = if hours.is_empty() { "0" } else { hours };
        return if minutes.chars().all(|c| c == '0') {
            hours.to_owned()
        } else {
            format!("{hours}:{minutes}")
        };
    }
    // A comma before exactly three digits groups thousands; any other comma separates numbers.
    let mut plain = String::new();
    for (n, part) in raw.split(',').enumerate() {
        if n > 0 && part.len() < 3 {
            break;
        }
        plain.push_str(part);
    }
    match plain.parse::<f64>() {
        Ok(value) if value.is_finite() => {
            let text = format!("{value}");
            text
        }
        _ => plain,
    }
}

/// The value of the number words at the start of `tokens` and how many tokens they took.
/// "one hundred and fifty" is 150, "a hundred" 100, "twenty-four seven" two numbers, and a
/// clock time "seven thirty" is read as 7:30 by the caller of this function's output.
fn number_words(tokens: &[&str]) -> (u64, usize) {
    let (mut total, mut current, mut used) = (0u64, 0u64, 0usize);
    for (i, token) in tokens.iter().enumerate() {
        let token = *token;
        let below_hundred = current % 100;
        if let Some(u) = UNITS.iter().position(|w| *w == token) {
            // "twenty four" goes on; "twelve five" or "four five" does not.
            let goes_on = used == 0
                || below_hundred == 0
                || ((20..100).contains(&below_hundred) && below_hundred % 10 == 0 && u < 10);
            if !goes_on {
                break;
            }
            current += u as u64;
        } else if let Some(t) = TENS.iter().position(|w| *w == token) {
            if used > 0 && below_hundred != 0 {
                break;
            }
            current += 20 + 10 * t as u64;
        } else if token == "hundred" {
            // Also at the start: "a hundred".
            current = current.max(1) * 100;
        } else if token == "thousand" {
            total += current.max(1) * 1000;
            current = 0;
        } else if token == "and"
            && used > 0
            && matches!(tokens[i - 1], "hundred" | "thousand")
            && tokens.get(i + 1).is_some_and(|n| is_number_word(n))
        {
        } else {
            break;
        }
        used = i + 1;
    }
    (total + current, used)
}

fn is_number_word(token: &str) -> bool {
    UNITS.contains(&token) || TENS.contains(&token)
}

/// Days named in `text`; with `ranges`, "Monday to Friday", "weekdays" and "weekends" count for
/// every day they cover (how facts state hours).
fn days(text: &str, ranges: bool) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let day_of = |token: &str| {
        DAYS.iter().position(|d| {
            token == *d
                || token.strip_suffix('s') == Some(*d)
                || (token.len() == 3 && d.starts_with(token) && ranges)
        })
    };
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if let Some(d) = day_of(token) {
            out.push(DAYS[d]);
            let range_to = tokens
                .get(i + 1)
                .is_some_and(|t| matches!(*t, "to" | "through" | "thru" | "until" | "till"));
            let dash = ranges && text_has_dash_after(&lower, token);
            if ranges && (range_to || dash) {
                let next = if range_to {
                    tokens.get(i + 2)
                } else {
                    tokens.get(i + 1)
                };
                if let Some(end) = next.and_then(|t| day_of(t)).filter(|&end| end != d) {
                    // The days strictly between; the end day is pushed when it is reached.
                    let mut k = (d + 1) % 7;
                    while k != end {
                        out.push(DAYS[k]);
                        k = (k + 1) % 7;
                    }
                }
            }
        }
        if ranges {
            match *token {
                "weekday" | "weekdays" => out.extend(&DAYS[..5]),
                "weekend" | "weekends" => out.extend(&DAYS[5..]),
                _ => {}
            }
        }
    }
    out
}

/// Whether `token` is followed by a dash in `text` ("mon-fri", "Monday – Friday").
fn text_has_dash_after(text: &str, token: &str) -> bool {
    text.match_indices(token).any(|(at, _)| {
        text[at + token.len()..]
            .trim_start()
            .starts_with(['-', '–', '—'])
    })
}

/// Capitalised words that do not start a sentence: the names a reply claims.
fn names(sentence: &str) -> Vec<&str> {
    words(sentence)
        .skip(1)
        .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
        .filter(|w| {
            let lower = w.to_lowercase().replace('’', "'");
            let lower = lower.trim_end_matches('.');
            !COMMON_CAPITALISED.contains(&lower) && !DAYS.contains(&lower.trim_end_matches('s'))
        })
        .collect()
}

/// The words of `text` (letters, digits, inner apostrophes and dots), in order.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '.' || c == '-'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
}

fn split_sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(['.', '!', '?'])
        .filter(|s| !s.trim().is_empty())
}

/// "We're closed on Sundays", "we don't open on Sunday", "No, not on Sundays".
fn is_negative(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    let negative = words(&lower).any(|w| {
        matches!(w, "no" | "not" | "never" | "closed" | "cannot")
            || w.ends_with("n't")
            || w.ends_with("n’t")
    });
    negative
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: &[&str] = &[
        "Prices > Repairs: Call-out fee: $89; after 6 pm and on Saturdays: $129",
        "Opening hours: Monday to Friday 7:30 am to 6 pm, Saturday 9 am to 1 pm, Sunday closed",
        "Team: our senior plumber is Dana Whitfield.",
        "Q: Do you take cash?\nA: No, we take cards and bank transfers only.",
    ];

    fn evidence() -> Evidence {
        Evidence::new(
            FACTS.iter().copied(),
            "You are the receptionist of Harbor Plumbing & Heating.",
        )
    }

    #[test]
    fn claims_are_checked_against_the_facts() {
        let cases: &[(&str, Option<Claim>)] = &[
            ("The call-out fee is $89.", None),
            (
                "After six pm it's one hundred and twenty-nine dollars.",
                None,
            ),
            ("It's $129 on Saturdays.", None),
            ("We open at 7:30 on weekdays.", None),
            ("We're open until 1 on Saturday.", None),
            ("Yes, we're open on Wednesday.", None),
            ("No, we're closed on Sundays.", None),
            ("No problem, we're open on Saturday.", None),
            (
                "We're open Monday to Saturday, but closed on Sundays.",
                None,
            ),
            ("Thanks for calling, I’m happy to help.", None),
            ("We open at seven thirty on weekdays.", None),
            ("Dana Whitfield is our senior plumber.", None),
            ("You can ask for Whitfield's help.", None),
            (
                "Thanks for calling Harbor Plumbing, I'm happy to help.",
                None,
            ),
            ("Sure, one of our plumbers can help.", None),
            // Invented.
            (
                "A water softener costs $450.",
                Some(Claim::Figure("450".into())),
            ),
            (
                "It costs ninety-five dollars.",
                Some(Claim::Figure("95".into())),
            ),
            ("Yes, we're open on Sunday.", Some(Claim::Day("sunday"))),
            (
                "No, we're closed on Saturdays.",
                Some(Claim::Day("saturday")),
            ),
            (
                "Our plumber Mike can help.",
                Some(Claim::Name("Mike".into())),
            ),
            (
                "We install Rheem heaters.",
                Some(Claim::Name("Rheem".into())),
            ),
            ("We open at 8:30.", Some(Claim::Figure("8:30".into()))),
            // True figures, but another day's.
            (
                "On Saturday we're open from 7:30 to 6.",
                Some(Claim::Figure("7:30".into())),
            ),
            ("On Saturday we're open from 9 to 1.", None),
            ("Monday to Friday we open at 7:30.", None),
            (
                "Installation takes 2 hours.",
                Some(Claim::Figure("2".into())),
            ),
        ];
        for (reply, expected) in cases {
            assert_eq!(&check(reply, &evidence()), expected, "{reply}");
        }
    }

    #[test]
    fn a_true_figure_from_an_unrelated_fact_is_not_evidence() {
        // The question was about a water softener: only facts that passed the gate are given.
        let unrelated_dropped = Evidence::new(["Q: Do you take cash?\nA: No."], "");
        assert_eq!(
            check("Installing one is $89.", &unrelated_dropped),
            Some(Claim::Figure("89".into()))
        );
    }

    #[test]
    fn numbers_in_digits_and_words_are_normalised() {
        assert_eq!(
            figures("$1,100.00 and 9:00 or 9:30, 12.50"),
            ["1100", "9", "9:30", "12.5"]
        );
        assert_eq!(
            figures("twenty-four hours, one hundred and fifty, eleven hundred, a hundred"),
            ["24", "150", "1100", "100"]
        );
        assert_eq!(
            figures("open twenty-four seven, at seven thirty"),
            ["24", "7", "7:30"]
        );
        assert_eq!(figures("one of our staff, 1, 2, 3"), ["1", "2", "3"]);
        assert!(figures("Call 555 0100 1000").contains(&"555".to_string()));
    }

    #[test]
    fn word_forms_share_a_stem() {
        for (a, b) in [
            ("fillings", "filling"),
            ("cleanings", "cleaning"),
            ("prices", "price"),
            ("priced", "pricing"),
            ("boxes", "box"),
            ("families", "family"),
            ("cancelled", "cancellation"),
            ("trucks", "truck"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_ne!(stem("glass"), stem("glad"));
    }

    #[test]
    fn a_reply_made_of_the_questions_own_words_says_nothing() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "Which brand of tankless water heater do you install?",
                "We install tankless water heaters.",
                true,
            ),
            (
                "What's the monthly rent on a five by ten unit?",
                "The monthly rent on a five by ten unit is five by ten.",
                true,
            ),
            (
                "What's the monthly rent on a five by ten unit?",
                "A five by ten unit is $45 a month.",
                false,
            ),
            (
                "Who is your events coordinator?",
                "Our events coordinator is Julia Marsh.",
                false,
            ),
            (
                "What do I need to bring to my first lesson?",
                "Please bring your provisional licence.",
                false,
            ),
            (
                "When can I get in?",
                "You can get in any time of day.",
                false,
            ),
            // Yes/no questions are judged before the model is asked, not here.
            (
                "Do you install water heaters?",
                "We install water heaters.",
                false,
            ),
            ("Which brand do you install?", "", false),
        ];
        for (question, reply, nothing) in cases {
            assert_eq!(
                adds_nothing(question, reply),
                *nothing,
                "{question:?} answered {reply:?}"
            );
        }
    }

    #[test]
    fn day_ranges_cover_their_days() {
        assert_eq!(days("Mon-Fri", true).len(), 5);
        assert_eq!(
            days("Thursday through Saturday", true),
            ["thursday", "friday", "saturday"]
        );
        assert_eq!(days("weekends", true), ["saturday", "sunday"]);
        assert_eq!(days("Monday to Friday", false), ["monday", "friday"]);
    }

    #[test]
    fn a_yes_no_question_about_something_no_fact_names_is_not_for_the_model() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Do you take cash?", None),
            ("Do you charge a call-out fee on Saturdays?", None),
            ("Are you open on Saturday?", None),
            ("Do you install water softeners?", Some("water")),
            ("Do you lend ladders?", Some("lend")),
            (
                "Can I pay the call-out fee by cash or check?",
                Some("check"),
            ),
            ("Is there a parking fee for visitors?", Some("parking")),
            // Not a yes/no question: the gate and the model judge it.
            ("How much is a water softener?", None),
        ];
        for (question, expected) in cases {
            assert_eq!(&uncovered(question, FACTS), expected, "{question}");
        }
    }

    #[test]
    fn a_day_the_caller_asks_about_is_no_evidence() {
        let e = evidence().with_caller_words("Are you open on Sunday?", true);
        assert_eq!(
            check("Yes, we're open on Sunday.", &e),
            Some(Claim::Day("sunday"))
        );
        assert_eq!(check("No, we're closed on Sunday.", &e), None);
    }

    #[test]
    fn a_callers_number_is_never_a_price() {
        let e = evidence().with_caller_words("What do you charge for my ten year old?", true);
        assert_eq!(check("For a ten year old it's $89.", &e), None);
        assert_eq!(
            check("It's $10 per night.", &e),
            Some(Claim::Figure("10".into()))
        );
        assert_eq!(
            check("It's ten dollars.", &e),
            Some(Claim::Figure("10".into()))
        );
    }

    #[test]
    fn amounts_are_figures_by_a_currency_sign_or_word() {
        let amounts = |t: &str| {
            let mut v: Vec<String> = money(t).into_iter().collect();
            v.sort();
            v
        };
        assert_eq!(
            amounts("$40 today, 12 dollars later, 10% off"),
            ["10", "12", "40"]
        );
        assert_eq!(amounts("five percent, 30 cents"), ["30", "5"]);
        assert!(amounts("The centre opens at 9, a decent 5 minutes away").is_empty());
    }

    #[test]
    fn a_days_hours_are_its_own_in_a_list_joined_onto_one_line() {
        // A fact's lines joined with spaces, as retrieval gives them.
        let hours = "Opening hours: - Monday to Thursday: 8:00 am to 6:00 pm - Friday: 8:00 am to \
                     4:00 pm - Saturday: 9:00 am to 1:00 pm, emergencies only - Sunday: closed";
        let e =
            Evidence::new([hours], "").with_caller_words("When are you open on Saturday?", true);
        assert_eq!(
            check("On Saturday we are open from 8 am to 6 pm.", &e),
            Some(Claim::Figure("8".into()))
        );
        assert_eq!(
            check("On Saturday we are open from 9 am to 1 pm.", &e),
            None
        );
        assert_eq!(check("On Tuesday we are open from 8 am to 6 pm.", &e), None);
        // Hours without a day, given for the asked day: they must be that day's.
        assert_eq!(
            check("The opening hours are 8 am to 6 pm.", &e),
            Some(Claim::Figure("8".into()))
        );
        assert_eq!(check("We open at 9 am and close at 1 pm.", &e), None);
        // Another day's true hours given as the asked day's.
        assert_eq!(
            check(
                "The opening hours on Saturday are Monday to Thursday 8 am to 6 pm.",
                &e
            ),
            Some(Claim::Figure("8".into()))
        );
        assert_eq!(
            check(
                "We're open 9 am to 1 pm on Saturday, and Monday to Thursday 8 am to 6 pm.",
                &e
            ),
            None
        );
        assert_eq!(
            day_pieces("open 8 to 6 Monday to Friday"),
            ["open 8 to 6 Monday to Friday"]
        );
    }

    #[test]
    fn a_time_the_caller_asks_about_for_a_day_is_no_evidence() {
        let e = evidence().with_caller_words("Are you open at 8 on Saturday?", true);
        assert_eq!(
            check("Yes, we open at 8 on Saturday.", &e),
            Some(Claim::Figure("8".into()))
        );
        assert_eq!(check("On Saturday we open at 9 am.", &e), None);
    }

    #[test]
    fn caller_words_count_on_a_turn_that_asks_nothing() {
        let e = evidence().with_caller_words("Please call me back on Thursday at 4.", false);
        assert_eq!(
            check("Sure, we'll call you back on Thursday at 4.", &e),
            None
        );
    }
}
