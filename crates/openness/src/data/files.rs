//! Datasets from files: a CSV, XLSX or JSON upload read into rows and checked against the
//! columns the officer declared — types, required cells, code tables — with a report that
//! names every row, column and reason (the first thousand; the count is exact).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Column, ColumnType};
use crate::Error;

/// Problems a report names; the count of refused rows is always exact.
const MAX_REPORTED: usize = 1_000;
/// The most rows one file may hold.
pub const MAX_FILE_ROWS: usize = 200_000;

/// Why a row (numbered as in the file: the header is row 1 of a CSV or XLSX, the first
/// object is row 1 of a JSON array) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = OpenDataRowProblem)]
pub struct RowProblem {
    pub row: u64,
    pub column: String,
    pub reason: String,
}

/// What a file holds against its declared columns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileReport {
    /// csv, xlsx or json, as read from the content.
    pub format: &'static str,
    pub rows: u64,
    pub rows_refused: u64,
    /// The first problems, in file order.
    pub problems: Vec<RowProblem>,
}

impl FileReport {
    pub fn accepted(&self) -> bool {
        self.rows_refused == 0 && self.rows > 0
    }
}

/// A file's rows, typed by the columns, and its report.
pub struct CheckedFile {
    pub rows: Vec<Map<String, Value>>,
    pub report: FileReport,
}

/// Checks the declared columns themselves.
pub fn check_columns(columns: &[Column]) -> Result<(), Error> {
    if columns.is_empty() || columns.len() > 100 {
        return Err(Error::invalid("columns", "declare 1 to 100 columns"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        let name_ok = (1..=40).contains(&c.name.len())
            && c.name.starts_with(|ch: char| ch.is_ascii_lowercase())
            && c.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !name_ok {
            return Err(Error::invalid("columns", format!("{:?}: a name is lower-case letters, digits and _", c.name)));
        }
        if !seen.insert(c.name.as_str()) {
            return Err(Error::invalid("columns", format!("{} is declared twice", c.name)));
        }
        crate::text_between("columns", &c.title, 1, 60)?;
        match (c.kind, c.codes.is_empty()) {
            (ColumnType::Code, true) => {
                return Err(Error::invalid("columns", format!("{}: a coded column lists its codes", c.name)));
            }
            (ColumnType::Code, false) if c.codes.len() > 500 => {
                return Err(Error::invalid("columns", format!("{}: at most 500 codes", c.name)));
            }
            (ColumnType::Code, false) => {}
            (_, false) => {
                return Err(Error::invalid("columns", format!("{}: only a coded column lists codes", c.name)));
            }
            (_, true) => {}
        }
    }
    Ok(())
}

/// Reads a file by its content (an XLSX file is a ZIP archive; JSON starts with `[`; else
/// CSV) and checks every row against the columns.
pub fn read(bytes: Vec<u8>, columns: &[Column]) -> Result<CheckedFile, Error> {
    let body = bytes.strip_prefix("\u{feff}".as_bytes()).map(<[u8]>::to_vec).unwrap_or(bytes);
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return read_json(&body, columns);
    }
    let format = if body.starts_with(b"PK\x03\x04") { "xlsx" } else { "csv" };
    let table = exchange::Table::read(body).map_err(|e| Error::invalid("file", e.to_string()))?;
    let mut positions = Vec::with_capacity(columns.len());
    for c in columns {
        match table.headers.iter().position(|h| h == &c.name || h == &c.title) {
            Some(p) => positions.push(Some(p)),
            None if c.required => {
                return Err(Error::invalid("file", format!("the header row has no column {} ({})", c.name, c.title)));
            }
            None => positions.push(None),
        }
    }
    let mut checker = Checker::new(format);
    for (i, cells) in table.rows.enumerate() {
        let row = i as u64 + 2;
        checker.limit(i)?;
        match cells {
            Err(reason) => checker.refuse(vec![RowProblem { row, column: String::new(), reason }]),
            Ok(cells) => {
                let value = |p: &Option<usize>| p.and_then(|p| cells.get(p)).map(|s| Value::String(s.clone()));
                let raw: Vec<Option<Value>> = positions.iter().map(value).collect();
                checker.row(columns, row, raw);
            }
        }
    }
    Ok(checker.finish())
}

fn read_json(body: &[u8], columns: &[Column]) -> Result<CheckedFile, Error> {
    let items: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| Error::invalid("file", format!("not a JSON array: {e}")))?;
    let mut checker = Checker::new("json");
    for (i, item) in items.into_iter().enumerate() {
        let row = i as u64 + 1;
        checker.limit(i)?;
        match item {
            Value::Object(mut object) => {
                let raw = columns.iter().map(|c| object.remove(&c.name)).collect();
                checker.row(columns, row, raw);
            }
            _ => checker.refuse(vec![RowProblem { row, column: String::new(), reason: "not an object".into() }]),
        }
    }
    Ok(checker.finish())
}

struct Checker {
    rows: Vec<Map<String, Value>>,
    report: FileReport,
}

impl Checker {
    fn new(format: &'static str) -> Checker {
        Checker { rows: Vec::new(), report: FileReport { format, rows: 0, rows_refused: 0, problems: Vec::new() } }
    }

    fn limit(&self, index: usize) -> Result<(), Error> {
        if index >= MAX_FILE_ROWS {
            return Err(Error::invalid("file", format!("a file holds at most {MAX_FILE_ROWS} rows")));
        }
        Ok(())
    }

    fn refuse(&mut self, problems: Vec<RowProblem>) {
        self.report.rows += 1;
        self.report.rows_refused += 1;
        let room = MAX_REPORTED.saturating_sub(self.report.problems.len());
        self.report.problems.extend(problems.into_iter().take(room));
    }

    fn row(&mut self, columns: &[Column], row: u64, raw: Vec<Option<Value>>) {
        let mut out = Map::with_capacity(columns.len());
        let mut problems = Vec::new();
        for (c, value) in columns.iter().zip(raw) {
            match typed(c, value) {
                Ok(v) => {
                    out.insert(c.name.clone(), v);
                }
                Err(reason) => problems.push(RowProblem { row, column: c.name.clone(), reason }),
            }
        }
        if problems.is_empty() {
            self.report.rows += 1;
            self.rows.push(out);
        } else {
            self.refuse(problems);
        }
    }

    fn finish(self) -> CheckedFile {
        CheckedFile { rows: self.rows, report: self.report }
    }
}

/// A cell as its column's type, or why it is not one. Blank cells are null, refused in a
/// required column.
pub fn typed(c: &Column, value: Option<Value>) -> Result<Value, String> {
    let text = match &value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
    };
    if text.is_empty() {
        return if c.required { Err("required, and empty".into()) } else { Ok(Value::Null) };
    }
    if text.chars().count() > 2_000 {
        return Err("longer than 2,000 characters".into());
    }
    let bad = |expected: &str| format!("{text:?} is not {expected}");
    match c.kind {
        ColumnType::Text => Ok(Value::String(text)),
        ColumnType::Integer => text
            .parse::<i64>()
            .or_else(|e| {
                text.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64).ok_or(e)
            })
            .map(Value::from)
            .map_err(|_| bad("a whole number")),
        ColumnType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad("a number")),
        ColumnType::Date => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(|d| Value::String(d.to_string()))
            .map_err(|_| bad("a date (YYYY-MM-DD)")),
        ColumnType::Month => chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
            .map(|d| Value::String(d.format("%Y-%m").to_string()))
            .map_err(|_| bad("a month (YYYY-MM)")),
        ColumnType::Boolean => match text.as_str() {
            "true" | "TRUE" | "1" | "是" => Ok(Value::Bool(true)),
            "false" | "FALSE" | "0" | "否" => Ok(Value::Bool(false)),
            _ => Err(bad("true/false (是/否)")),
        },
        ColumnType::Code if c.codes.contains(&text) => Ok(Value::String(text)),
        ColumnType::Code => Err(format!("{text:?} is not one of the column's codes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        vec![
            Column {
                name: "street".into(),
                title: "街道".into(),
                kind: ColumnType::Text,
                required: true,
                codes: vec![],
            },
            Column {
                name: "beds".into(),
                title: "床位数".into(),
                kind: ColumnType::Integer,
                required: true,
                codes: vec![],
            },
            Column {
                name: "kind".into(),
                title: "类型".into(),
                kind: ColumnType::Code,
                required: false,
                codes: vec!["公办".into(), "民办".into()],
            },
            Column {
                name: "opened".into(),
                title: "开业日期".into(),
                kind: ColumnType::Date,
                required: false,
                codes: vec![],
            },
        ]
    }

    #[test]
    fn csv_rows_are_typed_and_bad_ones_named() {
        let csv = "街道,beds,类型,opened\n彩云街道,120,公办,2019-05-01\n湖滨街道,many,私立,\n,30,,\n";
        let file = read(csv.as_bytes().to_vec(), &columns()).unwrap();
        assert_eq!(file.report.format, "csv");
        assert_eq!((file.report.rows, file.report.rows_refused), (3, 2));
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.rows[0]["beds"], serde_json::json!(120));
        let named: Vec<(u64, &str)> = file.report.problems.iter().map(|p| (p.row, p.column.as_str())).collect();
        assert_eq!(named, vec![(3, "beds"), (3, "kind"), (4, "street")]);
        assert!(!file.report.accepted());
    }

    #[test]
    fn xlsx_sheets_are_read_by_header_title_with_numbers_as_spreadsheets_store_them() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["街道", "机构名称", "床位数"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "彩云街道").unwrap();
        sheet.write_string(1, 1, "彩云养老院").unwrap();
        sheet.write_number(1, 2, 120.0).unwrap();
        sheet.write_string(2, 0, "湖滨街道").unwrap();
        sheet.write_string(2, 1, "湖滨颐养中心").unwrap();
        sheet.write_number(2, 2, 80.5).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let columns: Vec<Column> = columns().into_iter().filter(|c| c.name != "kind" && c.name != "opened").collect();
        let columns = [
            vec![Column {
                name: "name".into(),
                title: "机构名称".into(),
                kind: ColumnType::Text,
                required: true,
                codes: vec![],
            }],
            columns,
        ]
        .concat();
        let file = read(bytes, &columns).unwrap();
        assert_eq!(file.report.format, "xlsx");
        assert_eq!((file.report.rows, file.report.rows_refused), (2, 1));
        assert_eq!(file.rows[0]["beds"], serde_json::json!(120), "a whole number stored as 120.0");
        assert_eq!(file.report.problems[0].row, 3, "80.5 beds is not a whole number");
    }

    #[test]
    fn json_arrays_are_read_and_a_missing_required_header_is_refused() {
        let json = r#"[{"street": "彩云街道", "beds": 80}, {"street": "湖滨街道", "beds": "12"}]"#;
        let file = read(json.as_bytes().to_vec(), &columns()).unwrap();
        assert_eq!(file.report.format, "json");
        assert!(file.report.accepted());
        assert_eq!(file.rows[1]["beds"], serde_json::json!(12));
        assert!(read("street,kind\nx,公办\n".as_bytes().to_vec(), &columns()).is_err(), "beds is required");
    }
}
