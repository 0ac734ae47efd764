//! A restricted unpickler for PyTorch state dicts: it understands only the opcodes
//! `torch.save` emits for plain containers and tensors, and resolves only the
//! globals a state dict needs. Anything else is an error naming it; no code from
//! the file ever runs, and every size is bounded before anything is allocated.
use crate::error::{Result, WeightsError};
use crate::limits::{MAX_DEPTH, MAX_MEMO, MAX_MEMO_COPY, MAX_STACK};
use crate::tensor::DType;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Nested<T> {
    pub items: Vec<T>,
    depth: usize,
}

/// Where a tensor's elements live: `data/<key>` of the archive, from element `offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub dtype: DType,
    pub key: String,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Nested<Value>),
    List(Nested<Value>),
    Dict(Nested<(Value, Value)>),
    /// A whitelisted callable or storage class, by its qualified name.
    Global(String),
    /// `('storage', torch.<T>Storage, key, location, numel)`
    Storage {
        dtype: DType,
        key: String,
        numel: u64,
    },
    Tensor(TensorRef),
    Mark,
}

const REBUILD_TENSOR: &str = "torch._utils._rebuild_tensor_v2";
const REBUILD_PARAMETER: &str = "torch._utils._rebuild_parameter";
const ORDERED_DICT: &str = "collections.OrderedDict";

impl Value {
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(n) | Value::List(n) => n.depth,
            Value::Dict(n) => n.depth,
            _ => 0,
        }
    }

    /// Roughly the bytes a copy costs; recursion is bounded by MAX_DEPTH.
    fn weight(&self) -> u64 {
        std::mem::size_of::<Value>() as u64
            + match self {
                Value::Str(s) | Value::Global(s) | Value::Storage { key: s, .. } => s.len() as u64,
                Value::Bytes(b) => b.len() as u64,
                Value::Tensor(t) => t.key.len() as u64 + 16 * t.shape.len() as u64,
                Value::Tuple(n) | Value::List(n) => n.items.iter().map(Value::weight).sum::<u64>(),
                Value::Dict(n) => n.items.iter().map(|(k, v)| k.weight() + v.weight()).sum::<u64>(),
                _ => 0,
            }
    }
}

struct Unpickler<'a> {
    path: &'a Path,
    b: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    memo: Vec<Value>,
    copied: u64,
}

impl Unpickler<'_> {
    fn err(&self, message: impl Into<String>) -> WeightsError {
        WeightsError::Pickle { path: self.path.to_path_buf(), offset: self.at, message: message.into() }
    }

    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let end = (self.at as u64)
            .checked_add(n)
            .filter(|&e| e <= self.b.len() as u64)
            .ok_or_else(|| self.err(format!("{n} bytes requested, the pickle ends first")))?;
        let s = &self.b[self.at..end as usize];
        self.at = end as usize;
        Ok(s)
    }

    fn uint(&mut self, n: u64) -> Result<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| acc << 8 | b as u64))
    }

    fn line(&mut self) -> Result<String> {
        let n = self.b[self.at..].iter().position(|&c| c == b'\n').ok_or_else(|| self.err("unterminated GLOBAL"))?;
        let s = String::from_utf8_lossy(&self.b[self.at..self.at + n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.stack.iter().rposition(|v| *v == Value::Mark).ok_or_else(|| self.err("MARK missing"))?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Wraps or extends a container, refusing nesting beyond MAX_DEPTH.
    fn nest<T>(&self, mut items: Vec<T>, depth: usize, more: Vec<T>, child_depth: usize) -> Result<Nested<T>> {
        let depth = depth.max(child_depth + 1);
        if depth > MAX_DEPTH {
            return Err(self.err(format!("containers nest deeper than {MAX_DEPTH}")));
        }
        items.extend(more);
        Ok(Nested { items, depth })
    }

    fn global(&self, module: &str, name: &str) -> Result<Value> {
        let q = format!("{module}.{name}");
        let storage = module == "torch" && DType::from_torch_storage(name).is_some();
        if storage || [REBUILD_TENSOR, REBUILD_PARAMETER, ORDERED_DICT].contains(&q.as_str()) {
            Ok(Value::Global(q))
        } else {
            Err(WeightsError::RefusedGlobal { path: self.path.to_path_buf(), global: q })
        }
    }

    fn persistent(&self, pid: Value) -> Result<Value> {
        let Value::Tuple(t) = pid else { return Err(self.err("persistent id is not a tuple")) };
        match t.items.as_slice() {
            [Value::Str(kind), Value::Global(ty), Value::Str(key), _location, Value::Int(numel)] if kind == "storage" => {
                let dtype = ty
                    .strip_prefix("torch.")
                    .and_then(DType::from_torch_storage)
                    .ok_or_else(|| self.err(format!("{ty} is not a storage type")))?;
                let numel = u64::try_from(*numel).map_err(|_| self.err(format!("storage of {numel} elements")))?;
                Ok(Value::Storage { dtype, key: key.clone(), numel })
            }
            _ => Err(self.err("persistent id is not a ('storage', type, key, location, numel) record")),
        }
    }

    fn ints(&self, v: &Value, what: &str) -> Result<Vec<u64>> {
        let Value::Tuple(t) = v else { return Err(self.err(format!("tensor {what} is not a tuple"))) };
        t.items
            .iter()
            .map(|i| match i {
                Value::Int(x) if *x >= 0 => Ok(*x as u64),
                other => Err(self.err(format!("tensor {what} holds {other:?}, not a non-negative int"))),
            })
            .collect()
    }

    /// Applies a whitelisted callable.
    fn call(&self, f: &str, args: Vec<Value>) -> Result<Value> {
        match (f, args.as_slice()) {
            (ORDERED_DICT, []) => Ok(Value::Dict(Nested { items: Vec::new(), depth: 1 })),
            (REBUILD_TENSOR, [Value::Storage { dtype, key, numel }, Value::Int(offset), size, stride, ..]) => {
                let (shape, stride) = (self.ints(size, "size")?, self.ints(stride, "stride")?);
                let offset = u64::try_from(*offset).map_err(|_| self.err(format!("storage offset {offset}")))?;
                if shape.len() != stride.len() {
                    return Err(self.err(format!("size {shape:?} and stride {stride:?} differ in rank")));
                }
                // One past the last element the view touches.
                let span = shape.iter().zip(&stride).try_fold(1u64, |acc, (&n, &s)| acc.checked_add(n.saturating_sub(1).checked_mul(s)?));
                let empty = shape.contains(&0);
                if !empty && span.and_then(|n| n.checked_add(offset)).is_none_or(|n| n > *numel) {
                    return Err(self.err(format!("tensor view {shape:?} at offset {offset} exceeds its storage of {numel} elements")));
                }
                Ok(Value::Tensor(TensorRef { dtype: *dtype, key: key.clone(), offset, shape, stride }))
            }
            (REBUILD_PARAMETER, [t @ Value::Tensor(_), ..]) => Ok(t.clone()),
            _ => Err(self.err(format!("{f} called with unexpected arguments"))),
        }
    }

    fn memo_get(&mut self, i: u64) -> Result<()> {
        let v = self.memo.get(i as usize).ok_or_else(|| self.err(format!("memo {i} unset")))?;
        self.copied += v.weight();
        if self.copied > MAX_MEMO_COPY {
            return Err(self.err(format!("memo references copy more than {MAX_MEMO_COPY} bytes (a reference bomb?)")));
        }
        let v = v.clone();
        self.stack.push(v);
        Ok(())
    }

    /// The memo holds copies, not shared references: a state dict only memoizes
    /// things it never mutates afterwards (globals, strings, tuples), so a copy reads the same.
    fn memo_put(&mut self, i: u64) -> Result<()> {
        // Picklers number memo slots in order; an index far ahead is hostile.
        if i > MAX_MEMO || i > self.memo.len() as u64 + 1024 {
            return Err(self.err(format!("memo index {i} out of bounds")));
        }
        let v = self.stack.last().ok_or_else(|| self.err("PUT on an empty stack"))?.clone();
        self.copied += v.weight();
        if self.copied > MAX_MEMO_COPY {
            return Err(self.err(format!("memo copies exceed {MAX_MEMO_COPY} bytes")));
        }
        let i = i as usize;
        if i >= self.memo.len() {
            self.memo.resize(i + 1, Value::None);
        }
        self.memo[i] = v;
        Ok(())
    }

    fn step(&mut self, op: u8) -> Result<Option<Value>> {
        match op {
            0x80 => drop(self.take(1)?), // PROTO
            0x95 => drop(self.take(8)?), // FRAME
            b'.' => return self.pop().map(Some),
            b'(' => self.stack.push(Value::Mark),
            b'}' => self.stack.push(Value::Dict(Nested { items: Vec::new(), depth: 1 })),
            b']' => self.stack.push(Value::List(Nested { items: Vec::new(), depth: 1 })),
            b')' => self.stack.push(Value::Tuple(Nested { items: Vec::new(), depth: 1 })),
            b'N' => self.stack.push(Value::None),
            0x88 | 0x89 => self.stack.push(Value::Bool(op == 0x88)),
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.stack.push(Value::Int(v as i64))
            }
            b'K' | b'M' => {
                let v = self.uint(if op == b'K' { 1 } else { 2 })?;
                self.stack.push(Value::Int(v as i64))
            }
            0x8a => {
                let n = self.uint(1)?;
                if n > 8 {
                    return Err(self.err("integer wider than 64 bits"));
                }
                let b = self.take(n)?;
                let fill = if b.last().is_some_and(|x| x & 0x80 != 0) { 0xff } else { 0 };
                let mut v = [fill; 8];
                v[..b.len()].copy_from_slice(b);
                self.stack.push(Value::Int(i64::from_le_bytes(v)))
            }
            b'G' => {
                let v = f64::from_bits(self.take(8)?.iter().fold(0u64, |acc, &b| acc << 8 | b as u64));
                self.stack.push(Value::Float(v))
            }
            b'X' | 0x8c | 0x8d | b'B' | b'C' | 0x8e => {
                let n = match op {
                    0x8c | b'C' => self.uint(1)?,
                    0x8d | 0x8e => self.uint(8)?,
                    _ => self.uint(4)?,
                };
                let b = self.take(n)?.to_vec();
                let v = if matches!(op, b'X' | 0x8c | 0x8d) {
                    Value::Str(String::from_utf8(b).map_err(|_| self.err("string is not UTF-8"))?)
                } else {
                    Value::Bytes(b)
                };
                self.stack.push(v)
            }
            b'c' => {
                let (m, n) = (self.line()?, self.line()?);
                let g = self.global(&m, &n)?;
                self.stack.push(g)
            }
            0x93 => match (self.pop()?, self.pop()?) {
                (Value::Str(n), Value::Str(m)) => {
                    let g = self.global(&m, &n)?;
                    self.stack.push(g)
                }
                _ => return Err(self.err("STACK_GLOBAL needs two strings")),
            },
            b'q' | b'r' => {
                let i = self.uint(if op == b'q' { 1 } else { 4 })?;
                self.memo_put(i)?
            }
            0x94 => self.memo_put(self.memo.len() as u64)?,
            b'h' | b'j' => {
                let i = self.uint(if op == b'h' { 1 } else { 4 })?;
                self.memo_get(i)?
            }
            b't' | 0x85..=0x87 => {
                let items = if op == b't' {
                    self.pop_mark()?
                } else {
                    let n = (op - 0x84) as usize;
                    let at = self.stack.len().checked_sub(n).ok_or_else(|| self.err("stack underflow in TUPLE"))?;
                    self.stack.split_off(at)
                };
                let child = items.iter().map(Value::depth).max().unwrap_or(0);
                let t = self.nest(Vec::new(), 1, items, child)?;
                self.stack.push(Value::Tuple(t))
            }
            b'Q' => {
                let pid = self.pop()?;
                let s = self.persistent(pid)?;
                self.stack.push(s)
            }
            b'R' => match (self.pop()?, self.pop()?) {
                (Value::Tuple(args), Value::Global(f)) => {
                    let v = self.call(&f, args.items)?;
                    self.stack.push(v)
                }
                _ => return Err(self.err("REDUCE needs a global and a tuple")),
            },
            // BUILD sets attributes (an OrderedDict's `_metadata`): irrelevant to weights.
            b'b' => drop(self.pop()?),
            b'a' | b'e' => {
                let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                let child = items.iter().map(Value::depth).max().unwrap_or(0);
                let Some(Value::List(l)) = self.stack.pop() else { return Err(self.err("APPEND to a non-list")) };
                let l = self.nest(l.items, l.depth, items, child)?;
                self.stack.push(Value::List(l))
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = self.pop()?;
                    vec![self.pop()?, v]
                } else {
                    self.pop_mark()?
                };
                if items.len() % 2 != 0 {
                    return Err(self.err("SETITEMS with an odd number of items"));
                }
                let child = items.iter().map(Value::depth).max().unwrap_or(0);
                let mut it = items.into_iter();
                let pairs: Vec<(Value, Value)> = std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect();
                let Some(Value::Dict(d)) = self.stack.pop() else { return Err(self.err("SETITEM on a non-dict")) };
                let d = self.nest(d.items, d.depth, pairs, child)?;
                self.stack.push(Value::Dict(d))
            }
            other => return Err(self.err(format!("pickle opcode {other:#04x} ({:?}) is not allowed in a checkpoint", other as char))),
        }
        Ok(None)
    }
}

/// Unpickles `data` (the `data.pkl` of `path`) into a [`Value`] tree.
pub fn load(path: &Path, data: &[u8]) -> Result<Value> {
    let mut u = Unpickler { path, b: data, at: 0, stack: Vec::new(), memo: Vec::new(), copied: 0 };
    loop {
        if u.stack.len() as u64 > MAX_STACK {
            return Err(u.err(format!("more than {MAX_STACK} values on the stack")));
        }
        let op = u.uint(1)? as u8;
        if let Some(v) = u.step(op)? {
            return Ok(v);
        }
    }
}
