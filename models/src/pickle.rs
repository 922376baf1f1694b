//! A small pickle reader for PyTorch checkpoints that hold whole model objects.
//!
//! burn-store 0.21's pickle reader only knows the callables of a plain `state_dict` and
//! rejects anything else (ultralytics checkpoints fail on `builtins.set`). This reader runs
//! the pickle protocol (2–5) and keeps unknown classes and calls as opaque objects, so the
//! module tree, its tensors and the architecture dict can all be read. It never executes
//! anything: a pickle is data here.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("the pickle ends early (truncated file?)")]
    Eof,
    #[error("unknown pickle opcode 0x{0:02x} at byte {1}")]
    Opcode(u8, usize),
    #[error("malformed pickle at byte {0}: {1}")]
    Malformed(usize, String),
}

/// A tensor stored in the checkpoint: where its data lives, not the data.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Storage key (file `data/<key>` in the zip).
    pub storage: String,
    /// Storage class, e.g. `HalfStorage`, `FloatStorage`.
    pub dtype: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A Python object from the pickle. Containers are shared (memo references see
/// later mutations, as in Python).
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    /// Key/value pairs in insertion order.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// A global reference (`module.name`).
    Global(String, String),
    /// An instance of a class we do not model: its class, constructor args and `BUILD` state.
    Object(Rc<PyObject>),
    Tensor(Rc<TensorRef>),
    /// Persistent id (storage descriptor tuple).
    Persistent(Rc<Value>),
}

#[derive(Debug)]
pub struct PyObject {
    pub module: String,
    pub name: String,
    pub args: Value,
    pub state: RefCell<Value>,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks a string key up in a dict.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(d) => d
                .borrow()
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    /// The attribute dict of an object (its `BUILD` state), or the dict itself.
    pub fn state(&self) -> Option<Value> {
        match self {
            Value::Object(o) => {
                let s = o.state.borrow().clone();
                match &s {
                    Value::Dict(_) => Some(s),
                    // (dict, slots) state tuples.
                    Value::Tuple(t) => t.first().cloned().filter(|v| matches!(v, Value::Dict(_))),
                    _ => None,
                }
            }
            Value::Dict(_) => Some(self.clone()),
            _ => None,
        }
    }

    pub fn class_name(&self) -> Option<&str> {
        match self {
            Value::Object(o) => Some(&o.name),
            _ => None,
        }
    }

    fn items(&self) -> Vec<Value> {
        match self {
            Value::Tuple(t) => t.as_ref().clone(),
            Value::List(l) => l.borrow().clone(),
            _ => Vec::new(),
        }
    }
}

/// Values are trees of `Rc`s that a hostile pickle can nest a million deep (`]]]]…aaaa`):
/// the derived drop would recurse once per level and overflow the stack. This one moves
/// the children of every container it owns alone onto a heap stack and drops them flat.
impl Drop for Value {
    fn drop(&mut self) {
        fn take_children(v: &mut Value, out: &mut Vec<Value>) {
            match v {
                Value::Tuple(t) => {
                    if let Some(items) = Rc::get_mut(t) {
                        out.append(items);
                    }
                }
                Value::List(l) => {
                    if let Some(items) = Rc::get_mut(l) {
                        out.append(items.get_mut());
                    }
                }
                Value::Dict(d) => {
                    if let Some(pairs) = Rc::get_mut(d) {
                        for (k, v) in pairs.get_mut().drain(..) {
                            out.push(k);
                            out.push(v);
                        }
                    }
                }
                Value::Object(o) => {
                    if let Some(o) = Rc::get_mut(o) {
                        out.push(std::mem::replace(&mut o.args, Value::None));
                        out.push(std::mem::replace(o.state.get_mut(), Value::None));
                    }
                }
                Value::Persistent(p) => {
                    if let Some(p) = Rc::get_mut(p) {
                        out.push(std::mem::replace(p, Value::None));
                    }
                }
                _ => {}
            }
        }
        let mut pending = Vec::new();
        take_children(self, &mut pending);
        while let Some(mut v) = pending.pop() {
            take_children(&mut v, &mut pending);
        }
    }
}

/// Elements a pickle may place into containers, per byte of pickle (plus a floor): a real
/// checkpoint places fewer than one per byte. Without a bound, `BUILD` of a dict with itself
/// doubles it every 3 bytes.
const ELEMENTS_PER_BYTE: usize = 8;
const ELEMENTS_FLOOR: usize = 1 << 16;

/// How deep [`Machine::call`] may nest `_rebuild_from_type_v2` (torch nests it once).
const MAX_CALL_DEPTH: usize = 16;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Value>,
    /// Container elements still allowed (see [`ELEMENTS_PER_BYTE`]).
    budget: usize,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).ok_or(PickleError::Eof)?;
        if end > self.data.len() {
            return Err(PickleError::Eof);
        }
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let start = self.pos;
        let rel = self.data[start..]
            .iter()
            .position(|&c| c == b'\n')
            .ok_or(PickleError::Eof)?;
        self.pos = start + rel + 1;
        std::str::from_utf8(&self.data[start..start + rel]).map_err(|e| self.bad(e.to_string()))
    }

    fn bad(&self, msg: impl Into<String>) -> PickleError {
        PickleError::Malformed(self.pos, msg.into())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or_else(|| self.bad("stack underflow"))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let pos = self.pos;
        self.stack
            .last_mut()
            .ok_or(PickleError::Malformed(pos, "stack underflow".into()))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.bad("no mark"))?;
        if m > self.stack.len() {
            return Err(self.bad("mark beyond stack"));
        }
        Ok(self.stack.split_off(m))
    }

    /// Charges `n` elements placed into containers against the budget.
    fn charge(&mut self, n: usize) -> Result<(), PickleError> {
        match self.budget.checked_sub(n) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.bad(format!(
                "the pickle builds more than {} container elements from {} bytes \
                 (a malicious file?)",
                self.data.len() * ELEMENTS_PER_BYTE + ELEMENTS_FLOOR,
                self.data.len()
            ))),
        }
    }

    fn str_of(&self, b: &[u8]) -> Result<String, PickleError> {
        String::from_utf8(b.to_vec()).map_err(|e| self.bad(e.to_string()))
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v as i64))
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.u32()? as usize
                    };
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(self.bad("integer wider than 64 bits"));
                    }
                    let mut buf = [if b.last().is_some_and(|x| x & 0x80 != 0) {
                        0xff
                    } else {
                        0
                    }; 8];
                    buf[..n].copy_from_slice(b);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'I' => {
                    let l = self.line()?;
                    let v = match l {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(l.parse().map_err(|_| self.bad("bad INT"))?),
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let l = self.line()?.trim_end_matches('L');
                    self.stack
                        .push(Value::Int(l.parse().map_err(|_| self.bad("bad LONG"))?));
                }
                b'G' => {
                    let b = self.take(8)?;
                    self.stack
                        .push(Value::Float(f64::from_be_bytes(b.try_into().expect("8"))));
                }
                b'F' => {
                    let l = self.line()?;
                    self.stack
                        .push(Value::Float(l.parse().map_err(|_| self.bad("bad FLOAT"))?));
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as usize,
                        0x8c => self.u8()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let b = self.take(n)?;
                    let s = self.str_of(b)?;
                    self.stack.push(Value::Str(s));
                }
                b'T' | b'U' => {
                    let n = if op == b'T' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let b = self.take(n)?;
                    self.stack
                        .push(Value::Str(String::from_utf8_lossy(b).into_owned()));
                }
                b'V' | b'S' => {
                    let l = self.line()?.trim_matches('\'').to_string();
                    self.stack.push(Value::Str(l));
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => self.u32()? as usize,
                        b'C' => self.u8()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b']' => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'}' => self
                    .stack
                    .push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
                0x8f => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.bad("stack underflow"));
                    }
                    self.charge(n)?;
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    let pairs = items
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    self.stack.push(Value::Dict(Rc::new(RefCell::new(pairs))));
                }
                b'a' => {
                    self.charge(1)?;
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.borrow_mut().push(v),
                        _ => return Err(self.bad("APPEND to a non-list")),
                    }
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    match self.top()? {
                        Value::List(l) => l.borrow_mut().extend(items),
                        // Appending to an opaque object (e.g. a custom list type): ignore.
                        Value::Object(_) => {}
                        _ => return Err(self.bad("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    self.charge(2)?;
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Value::Dict(d) => d.borrow_mut().push((k, v)),
                        Value::Object(_) => {}
                        _ => return Err(self.bad("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    match self.top()? {
                        Value::Dict(d) => {
                            let mut d = d.borrow_mut();
                            for c in items.chunks(2) {
                                if let [k, v] = c {
                                    d.push((k.clone(), v.clone()));
                                }
                            }
                        }
                        Value::Object(_) => {}
                        _ => return Err(self.bad("SETITEMS on a non-dict")),
                    }
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let global = Value::Global(m.clone(), n.clone());
                            self.stack.push(global)
                        }
                        _ => return Err(self.bad("STACK_GLOBAL needs two strings")),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'p' => {
                    let i: u32 = self.line()?.parse().map_err(|_| self.bad("bad PUT"))?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' | b'j' | b'g' => {
                    let i = match op {
                        b'h' => self.u8()? as u32,
                        b'j' => self.u32()?,
                        _ => self.line()?.parse().map_err(|_| self.bad("bad GET"))?,
                    };
                    let v = self
                        .memo
                        .get(&i)
                        .cloned()
                        .ok_or_else(|| self.bad(format!("memo {i} not found")))?;
                    self.stack.push(v);
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(Value::Persistent(Rc::new(pid)));
                }
                b'P' => {
                    let l = self.line()?.to_string();
                    self.stack.push(Value::Persistent(Rc::new(Value::Str(l))));
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = self.call(f, args, 0)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.instantiate(cls, args);
                    self.stack.push(v);
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.instantiate(cls, args);
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let copied = match &state {
                        Value::Dict(s) => s.borrow().len() * 2,
                        _ => 0,
                    };
                    self.charge(copied)?;
                    match self.top()? {
                        Value::Object(o) => *o.state.borrow_mut() = state,
                        Value::Dict(d) => {
                            if let Value::Dict(s) = &state {
                                let items = s.borrow().clone();
                                d.borrow_mut().extend(items);
                            }
                        }
                        // BUILD on tensors (e.g. requires_grad state) and others: nothing to keep.
                        _ => {}
                    }
                }
                b'i' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    let args = self.pop_mark()?;
                    let v =
                        self.instantiate(Value::Global(module, name), Value::Tuple(Rc::new(args)));
                    self.stack.push(v);
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.bad("OBJ without a class"));
                    }
                    let cls = items.remove(0);
                    let v = self.instantiate(cls, Value::Tuple(Rc::new(items)));
                    self.stack.push(v);
                }
                0x97 | 0x98 => {} // NEXT_BUFFER / READONLY_BUFFER: out-of-band buffers unused by torch.save
                _ => return Err(PickleError::Opcode(op, at)),
            }
        }
    }

    fn instantiate(&self, cls: Value, args: Value) -> Value {
        let (module, name) = match &cls {
            Value::Global(m, n) => (m.clone(), n.clone()),
            _ => (String::new(), "?".into()),
        };
        Value::Object(Rc::new(PyObject {
            module,
            name,
            args,
            state: RefCell::new(Value::None),
        }))
    }

    /// REDUCE: model the few callables torch.save uses; everything else stays opaque.
    fn call(&mut self, f: Value, args: Value, depth: usize) -> Result<Value, PickleError> {
        let Value::Global(module, name) = &f else {
            return Ok(self.instantiate(f, args));
        };
        if depth > MAX_CALL_DEPTH {
            return Err(self.bad("calls nested too deep"));
        }
        let a = args.items();
        Ok(match (module.as_str(), name.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                self.rebuild_tensor(&a)?
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => {
                a.first().cloned().unwrap_or(Value::None)
            }
            ("torch._tensor", "_rebuild_from_type_v2") => {
                // (func, type, args, state): call func(*args).
                match (a.first(), a.get(2)) {
                    (Some(func), Some(inner)) => {
                        self.call(func.clone(), inner.clone(), depth + 1)?
                    }
                    _ => return Err(self.bad("_rebuild_from_type_v2 needs func and args")),
                }
            }
            ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
                Value::Dict(Rc::new(RefCell::new(Vec::new())))
            }
            ("builtins", "set")
            | ("__builtin__", "set")
            | ("builtins", "frozenset")
            | ("builtins", "list")
            | ("__builtin__", "frozenset") => {
                let items = a.first().map(Value::items).unwrap_or_default();
                self.charge(items.len())?;
                Value::List(Rc::new(RefCell::new(items)))
            }
            _ => self.instantiate(f, args),
        })
    }

    fn rebuild_tensor(&self, a: &[Value]) -> Result<Value, PickleError> {
        let ints = |v: Option<&Value>| -> Vec<usize> {
            v.map(Value::items)
                .unwrap_or_default()
                .iter()
                .filter_map(|x| match x {
                    Value::Int(i) => Some(*i as usize),
                    _ => None,
                })
                .collect()
        };
        let Some(Value::Persistent(pid)) = a.first() else {
            return Err(self.bad("tensor without a storage"));
        };
        // ('storage', <storage class>, key, location, numel)
        let pid = pid.items();
        let dtype = match pid.get(1) {
            Some(Value::Global(_, n)) => n.clone(),
            Some(Value::Object(o)) => o.name.clone(),
            _ => return Err(self.bad("storage without a type")),
        };
        let storage = match pid.get(2) {
            Some(Value::Str(s)) => s.clone(),
            Some(Value::Int(i)) => i.to_string(),
            _ => return Err(self.bad("storage without a key")),
        };
        let offset = match a.get(1) {
            Some(Value::Int(i)) => *i as usize,
            _ => 0,
        };
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage,
            dtype,
            offset,
            shape: ints(a.get(2)),
            stride: ints(a.get(3)),
        })))
    }
}

/// Parses a pickle.
pub fn parse(data: &[u8]) -> Result<Value, PickleError> {
    Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
        budget: data
            .len()
            .saturating_mul(ELEMENTS_PER_BYTE)
            .saturating_add(ELEMENTS_FLOOR),
    }
    .run()
}

/// Reads a tensor's values as f32 from its storage bytes (little-endian, as torch.save
/// writes on every platform we run on), honouring offset and strides.
pub fn tensor_values(t: &TensorRef, storage: &[u8]) -> Result<Vec<f32>, String> {
    let (size, conv): (usize, fn(&[u8]) -> f32) = match t.dtype.as_str() {
        "HalfStorage" => (2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        "BFloat16Storage" => (2, |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        "FloatStorage" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "DoubleStorage" => (8, |b| f64::from_le_bytes(b.try_into().expect("8")) as f32),
        "LongStorage" => (8, |b| i64::from_le_bytes(b.try_into().expect("8")) as f32),
        "IntStorage" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        "ByteStorage" | "BoolStorage" => (1, |b| b[0] as f32),
        other => return Err(format!("unsupported storage type {other}")),
    };
    let too_short = || format!("storage {} is too short (truncated file?)", t.storage);
    // Every element must lie in the storage: the shape, strides and offset come from the
    // pickle, and a hostile one could ask for 2^60 elements (or overflow the offsets).
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("tensor shape {:?} overflows", t.shape))?;
    if t.stride.len() < t.shape.len() {
        return Err(format!(
            "tensor shape {:?} with strides {:?}",
            t.shape, t.stride
        ));
    }
    if numel > 0 {
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |off, (&d, &s)| {
                off.checked_add((d - 1).checked_mul(s)?)
            })
            .ok_or_else(too_short)?;
        if last >= storage.len() / size {
            return Err(too_short());
        }
    }
    // Strides of 0 (an expanded view) repeat elements; nothing torch.save writes for weights
    // needs more elements than its storage holds, and this keeps memory bounded by the file.
    if numel > storage.len() / size {
        return Err(format!(
            "tensor of shape {:?} has more elements than its storage {} ({} bytes)",
            t.shape,
            t.storage,
            storage.len()
        ));
    }
    let mut out = Vec::with_capacity(numel);
    let mut idx = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        // In range: bounded by `last` above.
        let off = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        let b = storage
            .get(off * size..(off + 1) * size)
            .ok_or_else(too_short)?;
        out.push(conv(b));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// Reads a whole zip entry.
pub fn read_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    // The declared size comes from the file: read no more than it, and believe it only as
    // far as the compressed bytes can expand (deflate: at most 1032:1), so that a few bytes
    // cannot claim, or inflate to, gigabytes.
    let declared = f.size();
    let most = match f.compression() {
        zip::CompressionMethod::Stored => f.compressed_size(),
        _ => f.compressed_size().saturating_mul(1032),
    };
    if declared > most {
        return Err(format!(
            "{name}: declares {declared} bytes from {} compressed (a malformed or malicious file?)",
            f.compressed_size()
        ));
    }
    let mut v = Vec::with_capacity(declared.min(64 << 20) as usize);
    f.take(declared)
        .read_to_end(&mut v)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_protocol_2_values() {
        // pickle.dumps({'a': [1, 2.5, 'x'], 'b': (True, None)}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x03eX\x01\x00\x00\x00bq\x04\x88N\x86q\x05u.";
        let v = parse(data).unwrap();
        let a = v.get("a").unwrap();
        let items = a.items();
        assert!(matches!(items[0], Value::Int(1)));
        assert!(matches!(items[1], Value::Float(f) if f == 2.5));
        assert_eq!(items[2].as_str(), Some("x"));
        let b = v.get("b").unwrap().items();
        assert!(matches!(b[0], Value::Bool(true)));
        assert!(matches!(b[1], Value::None));
    }

    #[test]
    fn truncated_pickles_are_errors_not_panics() {
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04";
        for n in 0..data.len() {
            assert!(parse(&data[..n]).is_err());
        }
        assert!(matches!(parse(b"\xff"), Err(PickleError::Opcode(0xff, 0))));
    }

    #[test]
    fn strided_tensor_values() {
        let t = TensorRef {
            storage: "0".into(),
            dtype: "FloatStorage".into(),
            offset: 1,
            shape: vec![2, 2],
            stride: vec![1, 2],
        };
        let storage: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        // Transposed view starting at element 1: [[1, 3], [2, 4]].
        assert_eq!(
            tensor_values(&t, &storage).unwrap(),
            vec![1.0, 3.0, 2.0, 4.0]
        );
        assert!(tensor_values(&TensorRef { offset: 5, ..t }, &storage).is_err());
    }
}
