//! Job parameters: what identifies a job instance.
//!
//! The text form is the one Spring Batch's command line uses,
//! `name=value[,type[,identifying]]`, with short type names (`string`, `long`,
//! `double`, `date`, `datetime`, `bool`) or the Java class names. The JOB_KEY is the
//! MD5 of the identifying parameters rendered exactly as Spring Batch 5.x renders them
//! (`name={value=…, type=class java.lang.…, identifying=true};`, names sorted), so the
//! same parameters give the same instance as a Java job would.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use md5::{Digest, Md5};

/// A typed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// `java.lang.String`.
    String(String),
    /// `java.lang.Long`.
    Long(i64),
    /// `java.lang.Double`.
    Double(f64),
    /// `java.time.LocalDate`.
    Date(NaiveDate),
    /// `java.time.LocalDateTime`, at millisecond precision.
    DateTime(NaiveDateTime),
    /// `java.lang.Boolean`.
    Bool(bool),
}

/// The parameter types, with the Java class each maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `string` on the command line, `java.lang.String` in PARAMETER_TYPE.
    String,
    /// `long`, `java.lang.Long`.
    Long,
    /// `double`, `java.lang.Double`.
    Double,
    /// `date`, `java.time.LocalDate`.
    Date,
    /// `datetime`, `java.time.LocalDateTime`.
    DateTime,
    /// `bool`, `java.lang.Boolean`.
    Bool,
}

const TYPE_NAMES: &str = "string, long, double, date, datetime, bool (or java.lang.String, java.lang.Long, java.lang.Double, java.time.LocalDate, java.time.LocalDateTime, java.lang.Boolean)";

impl ParamType {
    /// The Java class name stored in PARAMETER_TYPE.
    pub fn java_class(self) -> &'static str {
        match self {
            Self::String => "java.lang.String",
            Self::Long => "java.lang.Long",
            Self::Double => "java.lang.Double",
            Self::Date => "java.time.LocalDate",
            Self::DateTime => "java.time.LocalDateTime",
            Self::Bool => "java.lang.Boolean",
        }
    }

    /// The short name used on the command line.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Long => "long",
            Self::Double => "double",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Bool => "bool",
        }
    }

    /// Accepts a short name (any case) or a Java class name.
    pub fn parse(name: &str) -> Option<Self> {
        let t = match name.trim().to_ascii_lowercase().as_str() {
            "string" | "str" | "java.lang.string" => Self::String,
            "long" | "int" | "integer" | "java.lang.long" | "java.lang.integer" => Self::Long,
            "double" | "float" | "java.lang.double" | "java.lang.float" => Self::Double,
            "date" | "localdate" | "java.time.localdate" => Self::Date,
            "datetime" | "localdatetime" | "java.time.localdatetime" => Self::DateTime,
            "bool" | "boolean" | "java.lang.boolean" => Self::Bool,
            _ => return None,
        };
        Some(t)
    }

    /// What a value of this type looks like, for error messages.
    pub fn expected_form(self) -> &'static str {
        match self {
            Self::String => "any text",
            Self::Long => "a whole number such as 42",
            Self::Double => "a number such as 2.5",
            Self::Date => "a date as YYYY-MM-DD",
            Self::DateTime => "a date-time as YYYY-MM-DDTHH:MM[:SS[.fraction]]",
            Self::Bool => "true or false",
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

impl ParamValue {
    /// The type of the value.
    pub fn param_type(&self) -> ParamType {
        match self {
            Self::String(_) => ParamType::String,
            Self::Long(_) => ParamType::Long,
            Self::Double(_) => ParamType::Double,
            Self::Date(_) => ParamType::Date,
            Self::DateTime(_) => ParamType::DateTime,
            Self::Bool(_) => ParamType::Bool,
        }
    }

    /// Parses `text` as a value of type `ty`.
    pub fn parse(ty: ParamType, text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not {}", ty.expected_form());
        Ok(match ty {
            ParamType::String => Self::String(text.to_owned()),
            ParamType::Long => Self::Long(text.trim().parse().map_err(|_| bad())?),
            // A double is finite: `inf`, `NaN` and `1e400` (infinity) are refused, since
            // no Java job would store them and they do not read back as written.
            ParamType::Double => match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Self::Double(v),
                _ => return Err(bad()),
            },
            ParamType::Date => Self::Date(parse_date(text.trim()).ok_or_else(bad)?),
            ParamType::DateTime => Self::DateTime(parse_datetime(text.trim()).ok_or_else(bad)?),
            ParamType::Bool => match text.trim() {
                "true" => Self::Bool(true),
                "false" => Self::Bool(false),
                _ => return Err(bad()),
            },
        })
    }

    /// The value as Java's `toString()` renders it: the form hashed into JOB_KEY.
    pub fn java_to_string(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            Self::Long(v) => v.to_string(),
            Self::Double(v) => java_double_to_string(*v),
            Self::Date(d) => d.format("%Y-%m-%d").to_string(),
            Self::DateTime(dt) => java_local_date_time_to_string(dt),
            Self::Bool(b) => b.to_string(),
        }
    }

    /// The ISO text stored in PARAMETER_VALUE.
    pub fn to_iso_text(&self) -> String {
        match self {
            Self::DateTime(dt) => {
                let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
                let nanos = dt.nanosecond() % 1_000_000_000;
                if nanos > 0 {
                    let frac = format!("{nanos:09}");
                    s.push('.');
                    s.push_str(frac.trim_end_matches('0'));
                }
                s
            }
            other => other.java_to_string(),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso_text())
    }
}

/// Whether `text` starts with a date in the exact ISO form `YYYY-MM-DD` (chrono's
/// `%m` and `%d` also take one digit, which the README's forms do not allow).
fn has_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// A date in the exact form `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 || !has_iso_date(text) {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A date-time in the exact form `YYYY-MM-DDTHH:MM[:SS[.fraction]]` (or with a space
/// for the `T`).
fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let two_digits = |at: usize| b.len() >= at + 2 && b[at..at + 2].iter().all(u8::is_ascii_digit);
    let shape = has_iso_date(text)
        && b.len() >= 16
        && matches!(b[10], b'T' | b' ')
        && two_digits(11)
        && b[13] == b':'
        && two_digits(14)
        && (b.len() == 16 || (b[16] == b':' && two_digits(17) && (b.len() == 19 || b[19] == b'.')));
    if !shape {
        return None;
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// `java.time.LocalDateTime.toString()`: seconds only when non-zero, the fraction in
/// groups of three digits.
fn java_local_date_time_to_string(dt: &NaiveDateTime) -> String {
    let mut s = dt.format("%Y-%m-%dT%H:%M").to_string();
    let (sec, nano) = (dt.second(), dt.nanosecond() % 1_000_000_000);
    if sec > 0 || nano > 0 {
        s.push_str(&format!(":{sec:02}"));
        if nano > 0 {
            if nano % 1_000_000 == 0 {
                s.push_str(&format!(".{:03}", nano / 1_000_000));
            } else if nano % 1_000 == 0 {
                s.push_str(&format!(".{:06}", nano / 1_000));
            } else {
                s.push_str(&format!(".{nano:09}"));
            }
        }
    }
    s
}

/// `java.lang.Double.toString(double)` (the shortest-digits algorithm of Java 19 and
/// later): plain notation for 10^-3 <= |v| < 10^7, else `d.dddE±n`, always with at
/// least one digit after the point.
pub fn java_double_to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, as Java does.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if v < 0.0 { "-" } else { "" };
    let abs = v.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exp + 1; // digits before the decimal point
        let (int, frac) = if point <= 0 {
            (
                "0".to_owned(),
                format!("{}{}", "0".repeat((-point) as usize), digits),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{}{}", digits, "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_owned(),
                digits[point as usize..].to_owned(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_owned()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{frac}E{exp}", &digits[..1])
    }
}

/// One parameter: a value and whether it identifies the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct JobParameter {
    /// The value.
    pub value: ParamValue,
    /// Whether the parameter is part of the instance's identity (its JOB_KEY).
    pub identifying: bool,
}

impl JobParameter {
    /// A parameter; `identifying` decides whether it changes the job instance.
    pub fn new(value: impl Into<ParamValue>, identifying: bool) -> Self {
        Self {
            value: value.into(),
            identifying,
        }
    }

    /// `{value=…, type=class java.lang.…, identifying=…}`, as Spring's `JobParameter.toString()`.
    fn key_form(&self) -> String {
        format!(
            "{{value={}, type=class {}, identifying={}}}",
            self.value.java_to_string(),
            self.value.param_type().java_class(),
            self.identifying
        )
    }
}

/// The longest parameter name Spring Batch's tables store (PARAMETER_NAME VARCHAR(100)).
pub const MAX_NAME_LENGTH: usize = 100;
/// The longest parameter value, as text, Spring Batch's tables store (PARAMETER_VALUE
/// VARCHAR(2500)).
pub const MAX_VALUE_LENGTH: usize = 2500;

/// A malformed parameter on the command line or in a stored execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job parameter `{text}`: {problem}")]
pub struct ParameterError {
    /// The text as given (or the parameter name).
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Named, typed parameters in insertion order; names are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobParameters {
    entries: Vec<(String, JobParameter)>,
}

impl JobParameters {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an identifying parameter.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        self.insert(name, JobParameter::new(value, true));
        self
    }

    /// Adds or replaces a parameter that does not identify the instance.
    pub fn with_non_identifying(
        mut self,
        name: impl Into<String>,
        value: impl Into<ParamValue>,
    ) -> Self {
        self.insert(name, JobParameter::new(value, false));
        self
    }

    /// Adds a parameter, replacing one of the same name in place.
    pub fn insert(&mut self, name: impl Into<String>, param: JobParameter) {
        let name = name.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, p)) => *p = param,
            None => self.entries.push((name, param)),
        }
    }

    /// The parameter named `name`.
    pub fn get(&self, name: &str) -> Option<&JobParameter> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// The value of the parameter named `name`.
    pub fn value(&self, name: &str) -> Option<&ParamValue> {
        self.get(name).map(|p| &p.value)
    }

    /// Checks that each parameter fits Spring Batch's columns: a name of at most
    /// [`MAX_NAME_LENGTH`] characters (PARAMETER_NAME) and a value whose text is at
    /// most [`MAX_VALUE_LENGTH`] (PARAMETER_VALUE). A repository calls this before it
    /// writes any row, so that no database stores, refuses or truncates a parameter
    /// differently from another.
    pub fn check_storable(&self) -> Result<(), ParameterError> {
        for (name, p) in &self.entries {
            let length = name.chars().count();
            if length > MAX_NAME_LENGTH {
                return Err(ParameterError {
                    text: name.clone(),
                    problem: format!(
                        "the name has {length} characters; Spring Batch's PARAMETER_NAME holds at most {MAX_NAME_LENGTH}"
                    ),
                });
            }
            let length = p.value.to_iso_text().chars().count();
            if length > MAX_VALUE_LENGTH {
                return Err(ParameterError {
                    text: name.clone(),
                    problem: format!(
                        "the value has {length} characters; Spring Batch's PARAMETER_VALUE holds at most {MAX_VALUE_LENGTH}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The parameters in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &JobParameter)> {
        self.entries.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Only the identifying parameters.
    pub fn identifying(&self) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .filter(|(_, p)| p.identifying)
                .cloned()
                .collect(),
        }
    }

    /// The JOB_KEY: MD5 hex of the identifying parameters, sorted by name, each as
    /// `name={value=…, type=class …, identifying=true};` (Spring Batch 5.x
    /// `DefaultJobKeyGenerator`).
    pub fn job_key(&self) -> String {
        let mut ids: Vec<_> = self.entries.iter().filter(|(_, p)| p.identifying).collect();
        ids.sort_by(|a, b| a.0.cmp(&b.0));
        let mut text = String::new();
        for (name, p) in ids {
            text.push_str(name);
            text.push('=');
            text.push_str(&p.key_form());
            text.push(';');
        }
        let digest = Md5::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses one `name=value[,type[,identifying]]`.
    ///
    /// A value may contain commas only when the type is spelled out after it
    /// (`note=a,b,string`), so that a comma never silently changes the type.
    pub fn parse_one(text: &str) -> Result<(String, JobParameter), ParameterError> {
        let err = |problem: String| ParameterError {
            text: text.to_owned(),
            problem,
        };
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| err("expected `name=value[,type[,identifying]]`".into()))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(err("the name before `=` is empty".into()));
        }
        let fields: Vec<&str> = rest.split(',').collect();
        let n = fields.len();
        let (value, ty, identifying) = if n >= 3
            && ParamType::parse(fields[n - 2]).is_some()
            && parse_identifying(fields[n - 1]).is_some()
        {
            let ty = ParamType::parse(fields[n - 2]).unwrap();
            (
                fields[..n - 2].join(","),
                ty,
                parse_identifying(fields[n - 1]).unwrap(),
            )
        } else if n >= 2 && ParamType::parse(fields[n - 1]).is_some() {
            (
                fields[..n - 1].join(","),
                ParamType::parse(fields[n - 1]).unwrap(),
                true,
            )
        } else if n == 1 {
            (fields[0].to_owned(), ParamType::String, true)
        } else if n == 2 {
            return Err(err(format!(
                "unknown type `{}`: expected one of {TYPE_NAMES}; a text value containing a comma must name its type last, e.g. `{name}={rest},string`",
                fields[1].trim()
            )));
        } else {
            return Err(err(format!(
                "cannot tell value, type and identifying apart in `{rest}`: expected `value,type,true|false` with type one of {TYPE_NAMES}"
            )));
        };
        let value = ParamValue::parse(ty, &value).map_err(|p| err(format!("{p} (type {ty})")))?;
        Ok((name.to_owned(), JobParameter { value, identifying }))
    }

    /// Parses every argument; a repeated name is an error.
    pub fn parse_args<S: AsRef<str>>(
        args: impl IntoIterator<Item = S>,
    ) -> Result<Self, ParameterError> {
        let mut params = Self::new();
        for arg in args {
            let (name, p) = Self::parse_one(arg.as_ref())?;
            if params.get(&name).is_some() {
                return Err(ParameterError {
                    text: arg.as_ref().to_owned(),
                    problem: format!("`{name}` is given twice"),
                });
            }
            params.insert(name, p);
        }
        Ok(params)
    }

    /// Reads a stored row back (PARAMETER_TYPE is a Java class name).
    pub fn from_stored(
        name: &str,
        java_type: &str,
        value: Option<&str>,
        identifying: bool,
    ) -> Result<(String, JobParameter), ParameterError> {
        let err = |problem: String| ParameterError {
            text: name.to_owned(),
            problem,
        };
        let ty = ParamType::parse(java_type).ok_or_else(|| {
            err(format!(
                "stored type `{java_type}` is not one of {TYPE_NAMES}"
            ))
        })?;
        let value = ParamValue::parse(ty, value.unwrap_or("")).map_err(err)?;
        Ok((name.to_owned(), JobParameter { value, identifying }))
    }
}

fn parse_identifying(text: &str) -> Option<bool> {
    match text.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl fmt::Display for JobParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, p)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={},{}", p.value, p.value.param_type())?;
            if !p.identifying {
                f.write_str(",false")?;
            }
        }
        Ok(())
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for ParamValue {
            fn from(v: $t) -> Self { Self::$variant((v $(as $cast)?).into()) }
        }
    )*};
}

value_from! {
    String => String, &str => String, i64 => Long, i32 => Long as i64, u32 => Long as i64,
    f64 => Double, NaiveDate => Date, NaiveDateTime => DateTime, bool => Bool,
}

/// Conversion of a parameter value to the type a step asks for.
pub trait FromParamValue: Sized {
    /// What the step expects, for error messages ("a date", "a whole number").
    const EXPECTED: &'static str;
    /// The value as `Self`; `None` when it has another type or is out of range.
    fn from_param_value(value: &ParamValue) -> Option<Self>;
    /// The value when the parameter is absent; `None` makes it required.
    fn when_missing() -> Option<Self> {
        None
    }
}

impl FromParamValue for String {
    const EXPECTED: &'static str = "text";
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        Some(value.to_iso_text())
    }
}

macro_rules! int_from_param {
    ($($t:ty),*) => {$(
        impl FromParamValue for $t {
            const EXPECTED: &'static str = "a whole number";
            fn from_param_value(value: &ParamValue) -> Option<Self> {
                match value {
                    ParamValue::Long(v) => <$t>::try_from(*v).ok(),
                    ParamValue::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_from_param!(i64, i32, u32, u64, usize);

impl FromParamValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Double(v) => Some(*v),
            ParamValue::Long(v) => Some(*v as f64),
            ParamValue::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl FromParamValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Bool(b) => Some(*b),
            ParamValue::String(s) => parse_identifying(s),
            _ => None,
        }
    }
}

impl FromParamValue for NaiveDate {
    const EXPECTED: &'static str = "a date (YYYY-MM-DD)";
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Date(d) => Some(*d),
            ParamValue::DateTime(dt) => Some(dt.date()),
            ParamValue::String(s) => parse_date(s.trim()),
            _ => None,
        }
    }
}

impl FromParamValue for NaiveDateTime {
    const EXPECTED: &'static str = "a date-time (YYYY-MM-DDTHH:MM:SS)";
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::DateTime(dt) => Some(*dt),
            ParamValue::String(s) => parse_datetime(s.trim()),
            _ => None,
        }
    }
}

impl FromParamValue for ParamValue {
    const EXPECTED: &'static str = "any value";
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        Some(value.clone())
    }
}

impl<T: FromParamValue> FromParamValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_param_value(value: &ParamValue) -> Option<Self> {
        T::from_param_value(value).map(Some)
    }
    fn when_missing() -> Option<Self> {
        Some(None)
    }
}

impl JobParameters {
    /// The parameter `name` converted to `T`, with an error that names the parameter,
    /// the value and what was expected.
    pub fn get_as<T: FromParamValue>(&self, name: &str) -> Result<T, ParameterError> {
        match self.get(name) {
            None => T::when_missing().ok_or_else(|| ParameterError {
                text: name.to_owned(),
                problem: format!(
                    "is required but was not given (pass `{name}=VALUE` as {})",
                    T::EXPECTED
                ),
            }),
            Some(p) => T::from_param_value(&p.value).ok_or_else(|| ParameterError {
                text: name.to_owned(),
                problem: format!(
                    "value `{}` of type {} cannot be used as {}",
                    p.value,
                    p.value.param_type(),
                    T::EXPECTED
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finite_doubles_and_exact_iso_dates_are_accepted() {
        for bad in [
            "x=inf,double",
            "x=-inf,double",
            "x=NaN,double",
            "x=1e400,double",
        ] {
            let err = JobParameters::parse_one(bad).unwrap_err();
            assert!(err.to_string().contains("is not a number"), "{bad}: {err}");
        }
        assert!(JobParameters::parse_one("x=1e300,double").is_ok());
        for bad in [
            "d=2024-1-2,date",
            "d=24-01-02,date",
            "d=2024-01-02x,date",
            "d=2024-01-2,date",
        ] {
            assert!(JobParameters::parse_one(bad).is_err(), "{bad}");
        }
        assert!(JobParameters::parse_one("d=2024-01-02,date").is_ok());
        for bad in [
            "t=2024-1-02T10:00,datetime",
            "t=2024-01-02T1:00,datetime",
            "t=2024-01-02T10:00:5,datetime",
            "t=2024-01-02T10:00:00junk,datetime",
        ] {
            assert!(JobParameters::parse_one(bad).is_err(), "{bad}");
        }
        for good in [
            "t=2024-01-02T10:00,datetime",
            "t=2024-01-02T10:00:05,datetime",
            "t=2024-01-02 10:00:05.250,datetime",
        ] {
            assert!(JobParameters::parse_one(good).is_ok(), "{good}");
        }
    }

    fn md5_hex(s: &str) -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn job_key_is_spring_batch_5_default_job_key() {
        let p = JobParameters::new().with("foo", "bar");
        assert_eq!(
            p.job_key(),
            md5_hex("foo={value=bar, type=class java.lang.String, identifying=true};")
        );
    }

    #[test]
    fn job_key_ignores_order_and_non_identifying_parameters() {
        let a = JobParameters::new().with("b", 2i64).with("a", "x");
        let b = JobParameters::new()
            .with("a", "x")
            .with_non_identifying("run.id", 7i64)
            .with("b", 2i64);
        assert_eq!(a.job_key(), b.job_key());
        assert_eq!(
            a.job_key(),
            md5_hex(
                "a={value=x, type=class java.lang.String, identifying=true};b={value=2, type=class java.lang.Long, identifying=true};"
            )
        );
        assert_ne!(
            a.job_key(),
            JobParameters::new()
                .with("a", "y")
                .with("b", 2i64)
                .job_key()
        );
    }

    #[test]
    fn job_key_of_no_parameters_is_md5_of_empty_text() {
        assert_eq!(
            JobParameters::new().job_key(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        let only_non_id = JobParameters::new().with_non_identifying("x", 1i64);
        assert_eq!(only_non_id.job_key(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn java_renderings() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (100.25, "100.25"),
            (1e7, "1.0E7"),
            (1.2345e10, "1.2345E10"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (-2.5, "-2.5"),
            (1234567.0, "1234567.0"),
            (0.1, "0.1"),
        ];
        for (v, s) in cases {
            assert_eq!(java_double_to_string(v), s, "{v}");
        }
        let dt = |s: &str| parse_datetime(s).unwrap();
        assert_eq!(
            java_local_date_time_to_string(&dt("2024-01-02T03:04:00")),
            "2024-01-02T03:04"
        );
        assert_eq!(
            java_local_date_time_to_string(&dt("2024-01-02T03:04:05.5")),
            "2024-01-02T03:04:05.500"
        );
        assert_eq!(
            ParamValue::DateTime(dt("2024-01-02T03:04")).to_iso_text(),
            "2024-01-02T03:04:00"
        );
    }

    #[test]
    fn parses_the_command_line_form() {
        let p = JobParameters::parse_args([
            "targetDate=2024-01-02,date",
            "fail.on=C,string,false",
            "name=plain",
            "n=5,java.lang.Long,true",
            "note=a,b,string",
        ])
        .unwrap();
        assert_eq!(
            p.value("targetDate"),
            Some(&ParamValue::Date(
                NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
            ))
        );
        assert!(!p.get("fail.on").unwrap().identifying);
        assert_eq!(p.value("name"), Some(&ParamValue::String("plain".into())));
        assert_eq!(p.value("n"), Some(&ParamValue::Long(5)));
        assert_eq!(p.value("note"), Some(&ParamValue::String("a,b".into())));
    }

    #[test]
    fn malformed_parameters_name_the_problem() {
        let e = JobParameters::parse_one("targetDate=2024-13-01,date").unwrap_err();
        assert!(
            e.to_string()
                .contains("`2024-13-01` is not a date as YYYY-MM-DD"),
            "{e}"
        );
        let e = JobParameters::parse_one("n=abc,long").unwrap_err();
        assert!(e.to_string().contains("whole number"), "{e}");
        let e = JobParameters::parse_one("x=1,lng").unwrap_err();
        assert!(e.to_string().contains("unknown type `lng`"), "{e}");
        let e = JobParameters::parse_one("novalue").unwrap_err();
        assert!(e.to_string().contains("name=value"), "{e}");
        let e = JobParameters::parse_args(["a=1", "a=2"]).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn typed_access_names_parameter_and_expectation() {
        let p = JobParameters::new().with("d", "not-a-date");
        let e = p.get_as::<NaiveDate>("d").unwrap_err();
        assert!(e.to_string().contains("`not-a-date`"), "{e}");
        let e = p.get_as::<i64>("missing").unwrap_err();
        assert!(e.to_string().contains("required"), "{e}");
        assert_eq!(p.get_as::<Option<i64>>("missing").unwrap(), None);
    }
}
