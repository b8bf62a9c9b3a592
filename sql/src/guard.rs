//! The read-only gate in front of user SQL: exactly one statement, and it must be a query (or an
//! `EXPLAIN` of one). DDL, DML, `COPY`, `SET` and everything else is refused before planning; the
//! planner's own `SQLOptions` refuse the same classes again as a second line.

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("SQL syntax: {0}")]
    Syntax(String),
    #[error("exactly one statement is allowed, found {0}")]
    StatementCount(usize),
    #[error("only read-only queries (SELECT, WITH, VALUES, EXPLAIN) are allowed; {0} is not")]
    NotReadOnly(String),
}

pub fn check_read_only(sql: &str) -> Result<(), GuardError> {
    let statements = DFParser::parse_sql(sql).map_err(|e| GuardError::Syntax(e.strip_backtrace()))?;
    if statements.len() != 1 {
        return Err(GuardError::StatementCount(statements.len()));
    }
    check_statement(&statements[0])
}

fn check_statement(statement: &DfStatement) -> Result<(), GuardError> {
    match statement {
        DfStatement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_) => Ok(()),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(()),
                other => Err(GuardError::NotReadOnly(kind(other))),
            },
            other => Err(GuardError::NotReadOnly(kind(other))),
        },
        DfStatement::Explain(explain) => check_statement(&explain.statement),
        DfStatement::CreateExternalTable(_) => Err(GuardError::NotReadOnly("CREATE EXTERNAL TABLE".into())),
        DfStatement::CopyTo(_) => Err(GuardError::NotReadOnly("COPY".into())),
        DfStatement::Reset(_) => Err(GuardError::NotReadOnly("RESET".into())),
    }
}

fn kind(statement: &SqlStatement) -> String {
    let text = statement.to_string();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_queries() {
        for sql in [
            "SELECT 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1)",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT count(*) FROM events",
            "select path, count(*) from events group by 1 order by 2 desc limit 10",
        ] {
            assert_eq!(check_read_only(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for sql in [
            "CREATE TABLE x AS SELECT 1",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE VIEW v AS SELECT 1",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "INSERT INTO events VALUES (1)",
            "DELETE FROM events",
            "UPDATE events SET name = 'x'",
            "DROP TABLE events",
            "SET datafusion.execution.batch_size = 1",
            "EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'",
            "EXPLAIN CREATE TABLE x AS SELECT 1",
            "SELECT 1; SELECT 2",
            "",
        ] {
            assert!(check_read_only(sql).is_err(), "{sql} was allowed");
        }
    }
}
