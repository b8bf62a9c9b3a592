//! Typed groups of nullable columns. Each group is one Rust struct whose fields are the stored
//! columns of the same name; [`column_group!`] derives the struct, its Arrow fields and its column
//! builders from one list, so a column cannot be added to the struct and forgotten in the schema.

use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayBuilder, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int32Array,
    Int32Builder, Int64Array, Int64Builder, ListBuilder, StringArray, StringBuilder,
};
use arrow::buffer::{BooleanBuffer, Buffer, MutableBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field};

/// A Rust type stored as one nullable Arrow column.
pub trait ColumnValue {
    type Builder: ArrayBuilder;
    fn data_type() -> DataType;
    fn new_builder(capacity: usize) -> Self::Builder;
    fn append(builder: &mut Self::Builder, value: Option<&Self>);
    fn append_nulls(builder: &mut Self::Builder, n: usize);
    /// Heap bytes, for buffer accounting.
    fn heap_size(&self) -> usize {
        0
    }
}

impl ColumnValue for String {
    type Builder = StringBuilder;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn new_builder(capacity: usize) -> StringBuilder {
        StringBuilder::with_capacity(capacity, 0)
    }
    fn append(builder: &mut StringBuilder, value: Option<&Self>) {
        builder.append_option(value);
    }
    fn append_nulls(builder: &mut StringBuilder, n: usize) {
        builder.append_nulls(n);
    }
    fn heap_size(&self) -> usize {
        self.len()
    }
}

macro_rules! primitive_column {
    ($ty:ty, $builder:ty, $dt:expr) => {
        impl ColumnValue for $ty {
            type Builder = $builder;
            fn data_type() -> DataType {
                $dt
            }
            fn new_builder(capacity: usize) -> $builder {
                <$builder>::with_capacity(capacity)
            }
            fn append(builder: &mut $builder, value: Option<&Self>) {
                builder.append_option(value.copied());
            }
            fn append_nulls(builder: &mut $builder, n: usize) {
                builder.append_nulls(n);
            }
        }
    };
}

primitive_column!(i32, Int32Builder, DataType::Int32);
primitive_column!(i64, Int64Builder, DataType::Int64);
primitive_column!(f64, Float64Builder, DataType::Float64);
primitive_column!(bool, BooleanBuilder, DataType::Boolean);

impl ColumnValue for Vec<String> {
    type Builder = ListBuilder<StringBuilder>;
    fn data_type() -> DataType {
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
    }
    fn new_builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(StringBuilder::new(), capacity)
    }
    fn append(builder: &mut Self::Builder, value: Option<&Self>) {
        match value {
            Some(items) => {
                for item in items {
                    builder.values().append_value(item);
                }
                builder.append(true);
            }
            None => builder.append(false),
        }
    }
    fn append_nulls(builder: &mut Self::Builder, n: usize) {
        builder.append_nulls(n);
    }
    fn heap_size(&self) -> usize {
        self.iter().map(|s| s.len() + std::mem::size_of::<String>()).sum()
    }
}

/// All-null columns of one length that share a single zeroed allocation: a flush of a partition
/// with sixty empty detail columns would otherwise allocate (and fault in) sixty sets of buffers.
///
/// Only for batches that are written out and dropped: `get_array_memory_size` counts the shared
/// buffer once per column, so buffered batches built this way would overstate their memory.
pub(crate) struct NullColumns {
    rows: usize,
    zeros: Buffer,
}

impl NullColumns {
    pub(crate) fn new(rows: usize) -> Self {
        // Room for the widest thing shared: `rows + 1` 64-bit values (offsets or values).
        Self { rows, zeros: MutableBuffer::from_len_zeroed((rows + 1) * 8).into() }
    }

    pub(crate) fn array(&self, data_type: &DataType) -> ArrayRef {
        let n = self.rows;
        let nulls = || Some(NullBuffer::new(BooleanBuffer::new(self.zeros.clone(), 0, n)));
        match data_type {
            DataType::Utf8 => Arc::new(StringArray::new(
                OffsetBuffer::new(ScalarBuffer::new(self.zeros.clone(), 0, n + 1)),
                Buffer::from_vec(Vec::<u8>::new()),
                nulls(),
            )),
            DataType::Int32 => Arc::new(Int32Array::new(ScalarBuffer::new(self.zeros.clone(), 0, n), nulls())),
            DataType::Int64 => Arc::new(Int64Array::new(ScalarBuffer::new(self.zeros.clone(), 0, n), nulls())),
            DataType::Float64 => Arc::new(Float64Array::new(ScalarBuffer::new(self.zeros.clone(), 0, n), nulls())),
            DataType::Boolean => Arc::new(BooleanArray::new(BooleanBuffer::new(self.zeros.clone(), 0, n), nulls())),
            other => new_null_array(other, n),
        }
    }
}

/// Declares a group of nullable columns: the struct (every field `Option<T>`), and a builder type
/// that appends a whole group (or nulls, for an absent group) to one column builder per field.
macro_rules! column_group {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, builders $builders:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl $name {
            /// The stored column names, in schema order.
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            pub(crate) fn arrow_fields() -> Vec<arrow::datatypes::Field> {
                vec![$(arrow::datatypes::Field::new(
                    stringify!($field),
                    <$ty as $crate::event::column_group::ColumnValue>::data_type(),
                    true,
                )),*]
            }

            /// All-null columns of this group for `rows` rows, without a per-row append.
            #[allow(dead_code)] // every group but the always-present context
            pub(crate) fn null_columns(rows: usize, out: &mut Vec<arrow::array::ArrayRef>) {
                $( out.push(arrow::array::new_null_array(
                    &<$ty as $crate::event::column_group::ColumnValue>::data_type(),
                    rows,
                )); )*
            }

            pub fn heap_size(&self) -> usize {
                0 $(+ self.$field.as_ref().map_or(0, $crate::event::column_group::ColumnValue::heap_size))*
            }
        }

        pub(crate) struct $builders {
            $( $field: <$ty as $crate::event::column_group::ColumnValue>::Builder, )*
            /// Rows without this group not yet appended: a run of them becomes one `append_nulls`
            /// per column instead of a null per column per row (most events carry one group).
            pending_nulls: usize,
        }

        impl $builders {
            pub(crate) fn with_capacity(capacity: usize) -> Self {
                Self {
                    $( $field: <$ty as $crate::event::column_group::ColumnValue>::new_builder(capacity), )*
                    pending_nulls: 0,
                }
            }

            pub(crate) fn append(&mut self, group: Option<&$name>) {
                let Some(group) = group else {
                    self.pending_nulls += 1;
                    return;
                };
                self.append_pending_nulls();
                $( <$ty as $crate::event::column_group::ColumnValue>::append(&mut self.$field, group.$field.as_ref()); )*
            }

            fn append_pending_nulls(&mut self) {
                if self.pending_nulls > 0 {
                    $( <$ty as $crate::event::column_group::ColumnValue>::append_nulls(
                        &mut self.$field,
                        self.pending_nulls,
                    ); )*
                    self.pending_nulls = 0;
                }
            }

            pub(crate) fn finish_into(&mut self, out: &mut Vec<arrow::array::ArrayRef>) {
                self.append_pending_nulls();
                $( out.push(arrow::array::ArrayBuilder::finish(&mut self.$field)); )*
            }
        }
    };
}

pub(crate) use column_group;

#[cfg(test)]
mod tests {
    use arrow::array::Array;

    use super::*;

    #[test]
    fn shared_null_columns_are_valid_all_null_arrays_of_every_type() {
        let nulls = NullColumns::new(70);
        for data_type in [
            DataType::Utf8,
            DataType::Int32,
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            <Vec<String> as ColumnValue>::data_type(),
        ] {
            let array = nulls.array(&data_type);
            array.to_data().validate_full().unwrap();
            assert_eq!((array.data_type(), array.len(), array.null_count()), (&data_type, 70, 70));
        }
    }
}
