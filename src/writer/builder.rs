//! Interning of paths, functions, types and variable names, and event construction.

use std::path::{Path, PathBuf};

use runtime_tracing::{
    CallRecord, EventLogKind, FullValueRecord, FunctionId, FunctionRecord, Line, PathId,
    RecordEvent, ReturnRecord, StepRecord, ThreadId, TraceLowLevelEvent, TypeId, TypeKind,
    TypeRecord, TypeSpecificInfo, ValueRecord, VariableId,
};
use rustc_hash::FxHashMap;

use super::EventSink;

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

    #[inline]
    fn emit(&mut self, event: TraceLowLevelEvent) {
        self.events += 1;
        self.sink.push(event);
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
        self.emit(TraceLowLevelEvent::Step(StepRecord {
            path_id,
            line: Line(line),
        }));
    }

    /// A call: argument values, a step on the function's first line, then the call record
    /// (the layout `runtime_tracing`'s own writer produces).
    pub fn call(&mut self, function_id: FunctionId, args: Vec<FullValueRecord>) {
        for arg in &args {
            self.emit(TraceLowLevelEvent::Value(arg.clone()));
        }
        let (path_id, line) = self.function_lines[function_id.0];
        self.emit(TraceLowLevelEvent::Step(StepRecord { path_id, line }));
        self.emit(TraceLowLevelEvent::Call(CallRecord { function_id, args }));
    }

    #[inline]
    pub fn ret(&mut self, return_value: ValueRecord) {
        self.emit(TraceLowLevelEvent::Return(ReturnRecord { return_value }));
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
