//! Interning of paths, functions, types and variable names, and event construction.

use std::path::{Path, PathBuf};

use runtime_tracing::{
    CallRecord, EventLogKind, FullValueRecord, FunctionId, FunctionRecord, Line, PathId,
    RecordEvent, StepRecord, ThreadId, TraceLowLevelEvent, TypeId, TypeKind, TypeRecord,
    TypeSpecificInfo, ValueRecord, VariableId,
};
use rustc_hash::FxHashMap;

use super::record::{Rec, Val};
use super::EventSink;

/// Slots of [`TraceBuilder::hot_type_id`].
const HOT_TYPE_SLOTS: usize = 3;
pub const HOT_INT: usize = 0;
pub const HOT_FLOAT: usize = 1;
pub const HOT_BOOL: usize = 2;

/// Where [`TraceBuilder::put_val`] appends a value.
#[derive(Clone, Copy)]
pub enum ValueTo {
    /// An argument of the next call ([`TraceBuilder::arg_val`]).
    Arg(VariableId),
    /// A return ([`TraceBuilder::ret_val`]).
    Return,
}

/// Builds a well-formed event stream: every id is announced (`Path`, `Function`, `Type`,
/// `VariableName`) before the first event that uses it, as the format requires.
pub struct TraceBuilder {
    sink: EventSink,
    paths: FxHashMap<PathBuf, PathId>,
    path_list: Vec<PathBuf>,
    /// Functions are keyed by (name, path, line): two functions called `run` in different
    /// files are different functions (`runtime_tracing`'s own writer keys by name only).
    functions: FxHashMap<(String, PathId, i64), FunctionId>,
    function_lines: Vec<(PathId, Line)>,
    types: FxHashMap<String, TypeId>,
    variables: FxHashMap<String, VariableId>,
    /// Type ids of static (non-heap) Python types by type object address: their names
    /// never change, so the encoder skips reading and hashing the name.
    static_types: FxHashMap<usize, TypeId>,
    /// Type ids of the scalar types the encoder reads in place (`HOT_*` slots), `u32::MAX`
    /// until first use.
    hot_types: [u32; HOT_TYPE_SLOTS],
    /// `arg` records since the last `call`.
    pending_args: u32,
    events: u64,
}

impl TraceBuilder {
    /// Starts the stream the way CodeTracer readers expect: the top-level function (id 0)
    /// called at `program`'s first line, and the `None` type as type id 0.
    pub fn new(sink: EventSink, program: &Path) -> Self {
        let mut b = TraceBuilder {
            sink,
            paths: FxHashMap::default(),
            path_list: Vec::new(),
            functions: FxHashMap::default(),
            function_lines: Vec::new(),
            types: FxHashMap::default(),
            variables: FxHashMap::default(),
            static_types: FxHashMap::default(),
            hot_types: [u32::MAX; HOT_TYPE_SLOTS],
            pending_args: 0,
            events: 0,
        };
        let top = b.function_id("<toplevel>", program, 1);
        debug_assert_eq!(top, FunctionId(0));
        b.emit(TraceLowLevelEvent::Call(CallRecord {
            function_id: top,
            args: vec![],
        }));
        let none = b.type_id(TypeKind::None, "None");
        debug_assert_eq!(none, runtime_tracing::NONE_TYPE_ID);
        b
    }

    /// Rare events (interning, threads, events): boxed.
    fn emit(&mut self, event: TraceLowLevelEvent) {
        self.events += 1;
        self.sink.push(event);
    }

    /// The hot path: one fixed-size record.
    #[inline(always)]
    fn emit_rec(&mut self, rec: Rec) {
        self.events += 1;
        self.sink.push_rec(rec);
    }

    pub fn events_emitted(&self) -> u64 {
        self.events
    }

    pub fn path_list(&self) -> &[PathBuf] {
        &self.path_list
    }

    pub fn path_id(&mut self, path: &Path) -> PathId {
        if let Some(id) = self.paths.get(path) {
            return *id;
        }
        let id = PathId(self.path_list.len());
        self.paths.insert(path.to_path_buf(), id);
        self.path_list.push(path.to_path_buf());
        self.emit(TraceLowLevelEvent::Path(path.to_path_buf()));
        id
    }

    pub fn function_id(&mut self, name: &str, path: &Path, line: i64) -> FunctionId {
        let path_id = self.path_id(path);
        let key = (name.to_owned(), path_id, line);
        if let Some(id) = self.functions.get(&key) {
            return *id;
        }
        let id = FunctionId(self.function_lines.len());
        self.functions.insert(key, id);
        self.function_lines.push((path_id, Line(line)));
        self.emit(TraceLowLevelEvent::Function(FunctionRecord {
            name: name.to_owned(),
            path_id,
            line: Line(line),
        }));
        id
    }

    pub fn type_id(&mut self, kind: TypeKind, name: &str) -> TypeId {
        if let Some(id) = self.types.get(name) {
            return *id;
        }
        let id = TypeId(self.types.len());
        self.types.insert(name.to_owned(), id);
        self.emit(TraceLowLevelEvent::Type(TypeRecord {
            kind,
            lang_type: name.to_owned(),
            specific_info: TypeSpecificInfo::None,
        }));
        id
    }

    /// The type id of a static type (one that lives as long as the interpreter and whose
    /// name never changes), by its address; `name` is read on first sight only.
    #[inline]
    pub fn static_type_id<'n>(
        &mut self,
        address: usize,
        kind: TypeKind,
        name: impl FnOnce() -> &'n str,
    ) -> TypeId {
        if let Some(id) = self.static_types.get(&address) {
            return *id;
        }
        let id = self.type_id(kind, name());
        self.static_types.insert(address, id);
        id
    }

    /// [`TraceBuilder::static_type_id`] behind a one-load cache: slot `slot` (a `HOT_*`
    /// constant) holds the id of the static type at `address` once it was asked for. `None`
    /// for an id that does not fit a `u32` (never in practice).
    #[inline]
    pub fn hot_type_id<'n>(
        &mut self,
        slot: usize,
        address: usize,
        kind: TypeKind,
        name: impl FnOnce() -> &'n str,
    ) -> Option<u32> {
        let id = self.hot_types[slot];
        if id != u32::MAX {
            return Some(id);
        }
        self.fill_hot_type(slot, address, kind, name)
    }

    #[cold]
    fn fill_hot_type<'n>(
        &mut self,
        slot: usize,
        address: usize,
        kind: TypeKind,
        name: impl FnOnce() -> &'n str,
    ) -> Option<u32> {
        let id = u32::try_from(self.static_type_id(address, kind, name).0).ok()?;
        self.hot_types[slot] = id;
        Some(id)
    }

    pub fn variable_id(&mut self, name: &str) -> VariableId {
        if let Some(id) = self.variables.get(name) {
            return *id;
        }
        let id = VariableId(self.variables.len());
        self.variables.insert(name.to_owned(), id);
        self.emit(TraceLowLevelEvent::VariableName(name.to_owned()));
        id
    }

    #[inline]
    pub fn step(&mut self, path_id: PathId, line: i64) {
        match u32::try_from(path_id.0) {
            Ok(path) => self.emit_rec(Rec::Step { path, line }),
            Err(_) => self.emit(TraceLowLevelEvent::Step(StepRecord {
                path_id,
                line: Line(line),
            })),
        }
    }

    /// One argument of the call about to be recorded: a `Value` event. The arguments of a
    /// call come before its [`TraceBuilder::call`], which repeats them in the `Call`
    /// record (the layout `runtime_tracing`'s own writer produces). Scalars cost no
    /// allocation.
    #[inline]
    pub fn arg(&mut self, variable_id: VariableId, value: ValueRecord) {
        self.arg_val(variable_id, Val::from_record(value));
    }

    /// [`TraceBuilder::arg`] with the value as the hot path stores it.
    #[inline(always)]
    pub fn arg_val(&mut self, variable_id: VariableId, value: Val) {
        // Ids are interned names and code objects: never near 4 G of them (the tables
        // would take over 100 GB).
        debug_assert!(variable_id.0 <= u32::MAX as usize);
        self.emit_rec(Rec::Arg {
            variable: variable_id.0 as u32,
            value,
        });
        self.pending_args += 1;
    }

    /// A call whose arguments were given with [`TraceBuilder::arg`] since the last call: a
    /// step on the function's first line, then the call record.
    #[inline]
    pub fn call(&mut self, function_id: FunctionId) {
        let (path_id, line) = self.function_lines[function_id.0];
        self.step(path_id, line.0);
        let nargs = std::mem::take(&mut self.pending_args);
        debug_assert!(function_id.0 <= u32::MAX as usize);
        self.emit_rec(Rec::Call {
            function: function_id.0 as u32,
            nargs,
        });
    }

    /// A call with its argument list built by the caller (arguments, step, call).
    pub fn call_with_args(&mut self, function_id: FunctionId, args: Vec<FullValueRecord>) {
        for arg in args {
            self.arg(arg.variable_id, arg.value);
        }
        self.call(function_id);
    }

    #[inline]
    pub fn ret(&mut self, return_value: ValueRecord) {
        self.ret_val(Val::from_record(return_value));
    }

    /// [`TraceBuilder::arg_val`] or [`TraceBuilder::ret_val`]; always inlined, so that with a
    /// constant `to` and a value of known variant the record is stored field by field.
    #[inline(always)]
    pub fn put_val(&mut self, to: ValueTo, value: Val) {
        match to {
            ValueTo::Arg(variable) => self.arg_val(variable, value),
            ValueTo::Return => self.ret_val(value),
        }
    }

    /// [`TraceBuilder::ret`] with the value as the hot path stores it.
    #[inline(always)]
    pub fn ret_val(&mut self, return_value: Val) {
        self.emit_rec(Rec::Return(return_value));
    }

    pub fn event(&mut self, kind: EventLogKind, metadata: &str, content: String) {
        self.emit(TraceLowLevelEvent::Event(RecordEvent {
            kind,
            metadata: metadata.to_owned(),
            content,
        }));
    }

    pub fn thread_start(&mut self, id: u64) {
        self.emit(TraceLowLevelEvent::ThreadStart(ThreadId(id)));
    }

    pub fn thread_switch(&mut self, id: u64) {
        self.emit(TraceLowLevelEvent::ThreadSwitch(ThreadId(id)));
    }

    pub fn flush(&mut self) {
        self.sink.flush();
    }

    /// Closes the events file; returns the number of events written.
    pub fn finish(&mut self) -> Result<u64, super::WriterError> {
        self.sink.finish()
    }

    pub fn events_path(&self) -> &Path {
        self.sink.events_path()
    }

    /// The events file's size cap (`--max-trace-size`).
    pub fn size_cap(&self) -> &std::sync::Arc<super::SizeCap> {
        self.sink.size_cap()
    }
}
