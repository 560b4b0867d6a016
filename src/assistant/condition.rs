//! Dialog-node conditions and `<? ?>` value expressions (the subset of Watson's SpEL
//! that directed phone dialogs use).
//!
//! Grammar: `or := and (("||" | "or") and)*`, `and := unary (("&&" | "and") unary)*`,
//! `unary := ("!" | "not") unary | cmp`, `cmp := sum (op sum)?` with op one of
//! `== != > < >= <=`, `sum := atom (("+" | "-") atom)*`, and atoms `#intent`, `@entity`,
//! `@entity:value`, `@entity:(multi word value)`, `$var` / `$var.path`, `input.text`,
//! `anything_else`, `welcome`, `conversation_start`, `true`, `false`, `null`, string
//! (`"..."` or `'...'`) and number literals, `( ... )`. Anything else is a parse error
//! that names the construct; the loader reports it.

use serde_json::Value;

use super::context::Context;

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Lit(Value),
    Intent(String),
    Entity(String, Option<String>),
    Var(Vec<String>),
    InputText,
    Welcome,
    ConversationStart,
    AnythingElse,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Intent(String),
    Entity(String, Option<String>),
    Var(Vec<String>),
    Ident(String),
    Str(String),
    Num(f64),
    And,
    Or,
    Not,
    Cmp(Cmp),
    Plus,
    Minus,
    LParen,
    RParen,
}

fn is_name(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let name = |i: &mut usize, extra: char| {
        let start = *i;
        while *i < chars.len() && (is_name(chars[*i]) || chars[*i] == extra) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '#' => {
                i += 1;
                let n = name(&mut i, '.');
                if n.is_empty() {
                    return Err("`#` without an intent name".into());
                }
                out.push(Tok::Intent(n));
            }
            '@' => {
                i += 1;
                let n = name(&mut i, '\0');
                if n.is_empty() {
                    return Err("`@` without an entity name".into());
                }
                let mut value = None;
                if chars.get(i) == Some(&':') {
                    i += 1;
                    if chars.get(i) == Some(&'(') {
                        let start = i + 1;
                        let end = chars[start..]
                            .iter()
                            .position(|&c| c == ')')
                            .map(|p| start + p);
                        let Some(end) = end else {
                            return Err("unclosed `@entity:(`".into());
                        };
                        value = Some(chars[start..end].iter().collect());
                        i = end + 1;
                    } else {
                        let v = name(&mut i, '.');
                        if v.is_empty() {
                            return Err(format!("`@{n}:` without a value"));
                        }
                        value = Some(v);
                    }
                }
                out.push(Tok::Entity(n, value));
            }
            '$' => {
                i += 1;
                let mut path = vec![name(&mut i, '\0')];
                while chars.get(i) == Some(&'.') {
                    i += 1;
                    path.push(name(&mut i, '\0'));
                }
                if path.iter().any(String::is_empty) {
                    return Err("`$` without a variable name".into());
                }
                if chars.get(i) == Some(&'(') {
                    return Err(format!("method call `${}(...)`", path.join(".")));
                }
                out.push(Tok::Var(path));
            }
            '"' | '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\\') => {
                            if let Some(&e) = chars.get(i + 1) {
                                s.push(e);
                            }
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&o) => {
                            s.push(o);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '0'..='9' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                out.push(Tok::Num(
                    s.parse().map_err(|_| format!("bad number `{s}`"))?,
                ));
            }
            '&' if next == Some('&') => {
                out.push(Tok::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push(Tok::Or);
                i += 2;
            }
            '=' if next == Some('=') => {
                out.push(Tok::Cmp(Cmp::Eq));
                i += 2;
            }
            '!' if next == Some('=') => {
                out.push(Tok::Cmp(Cmp::Ne));
                i += 2;
            }
            '!' => {
                out.push(Tok::Not);
                i += 1;
            }
            '>' | '<' => {
                let eq = next == Some('=');
                out.push(Tok::Cmp(match (c, eq) {
                    ('>', true) => Cmp::Ge,
                    ('>', false) => Cmp::Gt,
                    ('<', true) => Cmp::Le,
                    _ => Cmp::Lt,
                }));
                i += if eq { 2 } else { 1 };
            }
            '+' => {
                out.push(Tok::Plus);
                i += 1;
            }
            '-' => {
                out.push(Tok::Minus);
                i += 1;
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => {
                let n = name(&mut i, '.');
                if chars.get(i) == Some(&'(') || chars.get(i) == Some(&'[') {
                    return Err(format!("function or index `{n}{}`", chars[i]));
                }
                match n.as_str() {
                    "and" => out.push(Tok::And),
                    "or" => out.push(Tok::Or),
                    "not" => out.push(Tok::Not),
                    _ => out.push(Tok::Ident(n)),
                }
            }
            other => return Err(format!("unsupported character `{other}`")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.sum()?;
        if let Some(Tok::Cmp(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            return Ok(Expr::Cmp(op, Box::new(l), Box::new(self.sum()?)));
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut l = self.atom()?;
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.pos += 1;
                    l = Expr::Add(Box::new(l), Box::new(self.atom()?));
                }
                Some(Tok::Minus) => {
                    self.pos += 1;
                    l = Expr::Sub(Box::new(l), Box::new(self.atom()?));
                }
                _ => return Ok(l),
            }
        }
    }
    fn atom(&mut self) -> Result<Expr, String> {
        let t = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or("expression ends early")?;
        self.pos += 1;
        Ok(match t {
            Tok::Intent(n) => Expr::Intent(n),
            Tok::Entity(n, v) => Expr::Entity(n, v),
            Tok::Var(p) => Expr::Var(p),
            Tok::Str(s) => Expr::Lit(Value::String(s)),
            Tok::Num(n) => Expr::Lit(
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
            ),
            Tok::Minus => match self.atom()? {
                Expr::Lit(Value::Number(n)) => Expr::Lit(
                    serde_json::Number::from_f64(-n.as_f64().unwrap_or(0.0))
                        .map(Value::Number)
                        .unwrap_or(Value::Null),
                ),
                _ => return Err("unary minus on a non-number".into()),
            },
            Tok::LParen => {
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                e
            }
            Tok::Ident(i) => match i.as_str() {
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "null" => Expr::Lit(Value::Null),
                "anything_else" => Expr::AnythingElse,
                "welcome" => Expr::Welcome,
                "conversation_start" => Expr::ConversationStart,
                "input.text" => Expr::InputText,
                other => return Err(format!("unsupported identifier `{other}`")),
            },
            other => return Err(format!("unexpected token {other:?}")),
        })
    }
}

/// Parses a condition or `<? ?>` expression.
pub(crate) fn parse(src: &str) -> Result<Expr, String> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected trailing {:?}", p.toks[p.pos]));
    }
    Ok(e)
}

impl Expr {
    /// Calls `f` on every atom (for load-time checks of referenced intents/entities).
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        match self {
            Expr::Not(a) => a.visit(f),
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Cmp(_, a, b)
            | Expr::Add(a, b)
            | Expr::Sub(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            atom => f(atom),
        }
    }
}

/// One recognised entity occurrence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EntityMatch {
    pub entity: String,
    pub value: String,
    /// The matched text (what `@entity` yields for a pattern entity).
    pub literal: Option<String>,
    pub start: usize,
    pub end: usize,
}

/// What an expression is evaluated against.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    /// The winning intent (over the threshold), if any.
    pub intent: Option<&'a str>,
    pub entities: &'a [EntityMatch],
    pub context: &'a Context,
    pub input_text: &'a str,
    pub first_turn: bool,
}

/// Truthiness as dialog conditions use it.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(op: Cmp, a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        if a.is_number() || b.is_number() {
            return match op {
                Cmp::Eq => x == y,
                Cmp::Ne => x != y,
                Cmp::Gt => x > y,
                Cmp::Lt => x < y,
                Cmp::Ge => x >= y,
                Cmp::Le => x <= y,
            };
        }
    }
    match (op, a, b) {
        (Cmp::Eq, _, _) => a == b,
        (Cmp::Ne, _, _) => a != b,
        (_, Value::String(x), Value::String(y)) => match op {
            Cmp::Gt => x > y,
            Cmp::Lt => x < y,
            Cmp::Ge => x >= y,
            _ => x <= y,
        },
        _ => false,
    }
}

fn lookup<'v>(root: Option<&'v Value>, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(root?, |v, k| v.get(k))
}

/// Evaluates an expression to a JSON value.
pub(crate) fn eval(e: &Expr, env: &Env<'_>) -> Value {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Intent(n) => Value::Bool(env.intent == Some(n.as_str())),
        Expr::Entity(n, None) => env
            .entities
            .iter()
            .find(|m| &m.entity == n)
            .map(|m| Value::String(m.literal.clone().unwrap_or_else(|| m.value.clone())))
            .unwrap_or(Value::Null),
        Expr::Entity(n, Some(v)) => Value::Bool(
            env.entities
                .iter()
                .any(|m| &m.entity == n && m.value.eq_ignore_ascii_case(v)),
        ),
        Expr::Var(path) => {
            let v = if path[0] == "integrations" {
                lookup(env.context.integrations(), &path[1..])
            } else {
                let first = env.context.variable(&path[0]);
                lookup(first, &path[1..])
            };
            v.cloned().unwrap_or(Value::Null)
        }
        Expr::InputText => Value::String(env.input_text.to_string()),
        Expr::Welcome | Expr::ConversationStart => Value::Bool(env.first_turn),
        Expr::AnythingElse => Value::Bool(true),
        Expr::Not(a) => Value::Bool(!truthy(&eval(a, env))),
        Expr::And(a, b) => Value::Bool(truthy(&eval(a, env)) && truthy(&eval(b, env))),
        Expr::Or(a, b) => Value::Bool(truthy(&eval(a, env)) || truthy(&eval(b, env))),
        Expr::Cmp(op, a, b) => Value::Bool(compare(*op, &eval(a, env), &eval(b, env))),
        Expr::Add(a, b) | Expr::Sub(a, b) => {
            let (x, y) = (eval(a, env), eval(b, env));
            let minus = matches!(e, Expr::Sub(..));
            match (num(&x), num(&y)) {
                (Some(p), Some(q)) if x.is_number() || y.is_number() || minus => {
                    let r = if minus { p - q } else { p + q };
                    if r.fract() == 0.0 && r.abs() < 9.0e15 {
                        Value::from(r as i64)
                    } else {
                        serde_json::Number::from_f64(r)
                            .map(Value::Number)
                            .unwrap_or(Value::Null)
                    }
                }
                _ if !minus => {
                    let s = |v: &Value| {
                        v.as_str().map(str::to_string).unwrap_or_else(|| {
                            if v.is_null() {
                                String::new()
                            } else {
                                v.to_string()
                            }
                        })
                    };
                    Value::String(s(&x) + &s(&y))
                }
                _ => Value::Null,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let e = parse("#a || #b && !#c").expect("parses");
        assert!(
            matches!(e, Expr::Or(_, ref r) if matches!(**r, Expr::And(..))),
            "{e:?}"
        );
    }

    #[test]
    fn entity_value_forms() {
        assert_eq!(
            parse("@size:large").expect("p"),
            Expr::Entity("size".into(), Some("large".into()))
        );
        assert_eq!(
            parse("@city:(New York)").expect("p"),
            Expr::Entity("city".into(), Some("New York".into()))
        );
        assert_eq!(
            parse("$a.b").expect("p"),
            Expr::Var(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn unsupported_constructs_name_themselves() {
        for (src, needle) in [
            ("intents[0].confidence > 0.5", "intents["),
            ("$name.contains('x')", "method call"),
            ("input.text.matches('a')", "function or index"),
            ("#a ||", "ends early"),
            ("(#a", "missing `)`"),
            ("\"open", "unterminated"),
            ("#a ? 1 : 2", "unsupported character"),
        ] {
            let err = parse(src).expect_err(src);
            assert!(err.contains(needle), "{src}: {err}");
        }
    }
}
