//! The gate in front of user SQL, checked before anything plans it:
//!
//! - exactly one statement, and it must be a query (or an `EXPLAIN` of one). DDL, DML, `COPY`,
//!   `SET` and everything else is refused; the planner's own `SQLOptions` refuse the same classes
//!   again as a second line;
//! - the statement's size and shape stay within [`SqlLimits`]. DataFusion's planner and optimizer
//!   recurse over expression trees, so a statement made of thousands of `1+1+...` terms (which the
//!   parser builds without recursing, as a left-deep tree) overflowed a worker's stack and aborted
//!   the whole process. A stack overflow cannot be caught, so such input has to be refused here,
//!   by a walk that itself never descends further than the limit it enforces.

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Statement as SqlStatement, TableFactor, Visit, Visitor};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("SQL syntax: {0}")]
    Syntax(String),
    #[error("exactly one statement is allowed, found {0}")]
    StatementCount(usize),
    #[error("only read-only queries (SELECT, WITH, VALUES, EXPLAIN) are allowed; {0} is not")]
    NotReadOnly(String),
    #[error("the statement exceeds the limit {limit} = {max} ({what})")]
    TooComplex { limit: &'static str, max: usize, what: &'static str },
}

/// How large and how deep a statement may be. Every limit is far above what a hand-written or
/// generated analytics query needs, and far below what the planner's recursion can take on the
/// query threads' stacks (`docs/security.md` lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlLimits {
    /// Bytes of SQL text.
    pub max_statement_bytes: usize,
    /// Nesting of expressions (`a + b` inside `f(...)` inside `CASE ...` counts each level).
    pub max_expression_depth: usize,
    /// Expressions in the whole statement, literals included.
    pub max_expression_nodes: usize,
    /// Tables, views, subqueries and table functions in `FROM` and `JOIN` clauses, together.
    pub max_relations: usize,
    /// Queries nested in queries (subqueries, derived tables, CTE bodies).
    pub max_subquery_depth: usize,
    /// Items of one `IN (...)` list.
    pub max_in_list: usize,
    /// `UNION` / `INTERSECT` / `EXCEPT` operators in one query body.
    pub max_set_operations: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_statement_bytes: 256 << 10,
            max_expression_depth: 96,
            max_expression_nodes: 50_000,
            max_relations: 64,
            max_subquery_depth: 16,
            max_in_list: 10_000,
            max_set_operations: 128,
        }
    }
}

/// Checks `sql` against the read-only rule and `limits`.
///
/// Parsing and dropping an over-deep statement recurse as deep as it is, so callers run this on a
/// thread with a large stack (the query runtime's); the walk that measures the statement stops at
/// the first limit it crosses and so recurses no deeper than the limits.
pub fn check(sql: &str, limits: &SqlLimits) -> Result<(), GuardError> {
    if sql.len() > limits.max_statement_bytes {
        return Err(GuardError::TooComplex {
            limit: "max_statement_bytes",
            max: limits.max_statement_bytes,
            what: "bytes of SQL text",
        });
    }
    let statements = DFParser::parse_sql(sql).map_err(|e| GuardError::Syntax(e.strip_backtrace()))?;
    if statements.len() != 1 {
        return Err(GuardError::StatementCount(statements.len()));
    }
    let inner = read_only_query(&statements[0])?;
    let mut shape = Shape::new(limits);
    match inner.visit(&mut shape) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The read-only rule alone, with default limits (tests and callers that plan fixed SQL).
pub fn check_read_only(sql: &str) -> Result<(), GuardError> {
    check(sql, &SqlLimits::default())
}

/// The statement a read-only request may run: a query, or an `EXPLAIN` of one.
fn read_only_query(statement: &DfStatement) -> Result<&SqlStatement, GuardError> {
    match statement {
        DfStatement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_) => Ok(inner),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(statement),
                other => Err(GuardError::NotReadOnly(kind(other))),
            },
            other => Err(GuardError::NotReadOnly(kind(other))),
        },
        DfStatement::Explain(explain) => read_only_query(&explain.statement),
        DfStatement::CreateExternalTable(_) => Err(GuardError::NotReadOnly("CREATE EXTERNAL TABLE".into())),
        DfStatement::CopyTo(_) => Err(GuardError::NotReadOnly("COPY".into())),
        DfStatement::Reset(_) => Err(GuardError::NotReadOnly("RESET".into())),
    }
}

fn kind(statement: &SqlStatement) -> String {
    // The first two words only: formatting a whole (possibly huge) statement is not needed to name it.
    let text = statement.to_string();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Measures a statement while visiting it, and breaks at the first limit crossed.
struct Shape<'a> {
    limits: &'a SqlLimits,
    expression_depth: usize,
    expressions: usize,
    relations: usize,
    query_depth: usize,
}

impl<'a> Shape<'a> {
    fn new(limits: &'a SqlLimits) -> Self {
        Self { limits, expression_depth: 0, expressions: 0, relations: 0, query_depth: 0 }
    }

    fn over(&self, limit: &'static str, max: usize, what: &'static str) -> ControlFlow<GuardError> {
        ControlFlow::Break(GuardError::TooComplex { limit, max, what })
    }
}

/// Set operators in a query body, counted without recursion: the parser builds a chain of
/// `UNION`s left-deep, and the generic visit would recurse once per operator.
fn set_operations(body: &SetExpr, max: usize) -> usize {
    let mut count = 0;
    let mut pending = vec![body];
    while let Some(node) = pending.pop() {
        if let SetExpr::SetOperation { left, right, .. } = node {
            count += 1;
            if count > max {
                break;
            }
            pending.push(left);
            pending.push(right);
        }
    }
    count
}

impl Visitor for Shape<'_> {
    type Break = GuardError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<GuardError> {
        self.query_depth += 1;
        // The outermost query is depth 1.
        if self.query_depth > self.limits.max_subquery_depth + 1 {
            return self.over("max_subquery_depth", self.limits.max_subquery_depth, "levels of nested queries");
        }
        if set_operations(&query.body, self.limits.max_set_operations) > self.limits.max_set_operations {
            return self.over(
                "max_set_operations",
                self.limits.max_set_operations,
                "UNION / INTERSECT / EXCEPT operators in one query",
            );
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<GuardError> {
        self.query_depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<GuardError> {
        self.relations += 1;
        if self.relations > self.limits.max_relations {
            return self.over("max_relations", self.limits.max_relations, "tables, subqueries and joins");
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<GuardError> {
        self.expression_depth += 1;
        self.expressions += 1;
        if self.expression_depth > self.limits.max_expression_depth {
            return self.over("max_expression_depth", self.limits.max_expression_depth, "levels of nested expressions");
        }
        if self.expressions > self.limits.max_expression_nodes {
            return self.over("max_expression_nodes", self.limits.max_expression_nodes, "expressions in the statement");
        }
        if let Expr::InList { list, .. } = expr {
            if list.len() > self.limits.max_in_list {
                return self.over("max_in_list", self.limits.max_in_list, "items in one IN list");
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<GuardError> {
        self.expression_depth -= 1;
        ControlFlow::Continue(())
    }
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

    fn limit_hit(sql: &str) -> Option<&'static str> {
        match check_read_only(sql) {
            Err(GuardError::TooComplex { limit, .. }) => Some(limit),
            _ => None,
        }
    }

    fn terms(n: usize, op: &str) -> String {
        vec!["1"; n].join(op)
    }

    /// The attack that aborted the process: a long left-deep chain of binary operators, as long
    /// as the statement limit allows. Parsing and dropping it recurse once per term, so it is
    /// checked on a thread with the query runtime's stack (`QueryConfig::thread_stack_bytes`);
    /// the measuring walk itself stops at the depth limit.
    #[test]
    fn long_operator_chains_are_refused() {
        let limits = SqlLimits::default();
        for op in ["+", "=", "||", "::int+"] {
            let terms = limits.max_statement_bytes / (op.len() + 1) - 8;
            let sql = format!("SELECT {}", vec!["1"; terms].join(op));
            assert!(sql.len() <= limits.max_statement_bytes);
            let handle = std::thread::Builder::new()
                .stack_size(crate::query::QueryConfig::default().thread_stack_bytes)
                .spawn(move || limit_hit(&sql))
                .expect("spawn");
            assert_eq!(handle.join().expect("no overflow"), Some("max_expression_depth"), "{op}");
        }
    }

    #[test]
    fn each_limit_names_itself() {
        let limits = SqlLimits::default();
        let long = format!("SELECT '{}'", "x".repeat(limits.max_statement_bytes));
        assert_eq!(limit_hit(&long), Some("max_statement_bytes"));
        let in_list = format!("SELECT 1 WHERE 1 IN ({})", terms(limits.max_in_list + 1, ","));
        assert_eq!(limit_hit(&in_list), Some("max_in_list"));
        let unions = vec!["SELECT 1"; limits.max_set_operations + 2].join(" UNION ALL ");
        assert_eq!(limit_hit(&unions), Some("max_set_operations"));
        let joins = format!(
            "SELECT 1 FROM events e0 {}",
            (1..=limits.max_relations).map(|i| format!("JOIN events e{i} ON true")).collect::<Vec<_>>().join(" ")
        );
        assert_eq!(limit_hit(&joins), Some("max_relations"));
        let mut nested = "SELECT 1".to_string();
        for _ in 0..=limits.max_subquery_depth {
            nested = format!("SELECT * FROM ({nested}) t");
        }
        // The parser's own recursion limit may refuse it first; either way it is refused.
        assert!(check_read_only(&nested).is_err());
        let wide = format!("SELECT {}", vec!["1"; limits.max_expression_nodes + 1].join(","));
        assert_eq!(limit_hit(&wide), Some("max_expression_nodes"));
    }

    #[test]
    fn queries_at_the_limits_pass() {
        let limits = SqlLimits::default();
        let chain = format!("SELECT {}", terms(limits.max_expression_depth - 2, "+"));
        assert_eq!(check_read_only(&chain), Ok(()));
        let in_list = format!("SELECT 1 WHERE 1 IN ({})", terms(limits.max_in_list, ","));
        assert_eq!(check_read_only(&in_list), Ok(()));
        let unions = vec!["SELECT 1"; limits.max_set_operations + 1].join(" UNION ALL ");
        assert_eq!(check_read_only(&unions), Ok(()));
        let mut nested = "SELECT 1".to_string();
        for _ in 0..limits.max_subquery_depth {
            nested = format!("SELECT * FROM ({nested}) t");
        }
        assert_eq!(check_read_only(&nested), Ok(()));
    }
}
