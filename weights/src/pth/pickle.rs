//! A restricted unpickler for PyTorch state dicts: it understands only the opcodes
//! `torch.save` emits for plain containers and tensors, and resolves only the
//! globals a state dict needs. Anything else is an error naming it; no code from
//! the file ever runs, and every size is bounded before anything is allocated.

/// Stack and memo bounds: far above any state dict, far below memory trouble.
const MAX_STACK: usize = 1 << 20;
const MAX_MEMO: usize = 1 << 22;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A whitelisted callable, by its qualified name.
    Global(String),
    /// `('storage', StorageType, key, location, numel)`
    Storage {
        dtype: String,
        key: String,
        numel: u64,
    },
    Tensor {
        dtype: String,
        key: String,
        offset: u64,
        shape: Vec<u64>,
        stride: Vec<u64>,
    },
    Mark,
}

const ALLOWED: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.DoubleStorage",
    "torch.LongStorage",
    "torch.IntStorage",
];

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| format!("pickle truncated at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.b[self.at..];
        let n = rest.iter().position(|&c| c == b'\n').ok_or("unterminated GLOBAL")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }
}

fn global(module: &str, name: &str) -> Result<Value, String> {
    let q = format!("{module}.{name}");
    if ALLOWED.contains(&q.as_str()) {
        Ok(Value::Global(q))
    } else {
        Err(format!("refusing global {q}: only tensors and plain containers may appear in a checkpoint"))
    }
}

fn ints(v: &Value) -> Result<Vec<u64>, String> {
    match v {
        Value::Tuple(items) => {
            items
                .iter()
                .map(|i| {
                    if let Value::Int(x) = i {
                        u64::try_from(*x).map_err(|e| e.to_string())
                    } else {
                        Err("size/stride must be ints".into())
                    }
                })
                .collect()
        }
        _ => Err("size/stride must be a tuple".into()),
    }
}

/// Applies a whitelisted callable.
fn call(f: &str, args: Vec<Value>) -> Result<Value, String> {
    match (f, args.as_slice()) {
        ("collections.OrderedDict", _) => Ok(Value::Dict(Vec::new())),
        ("torch._utils._rebuild_tensor_v2", [Value::Storage { dtype, key, numel }, Value::Int(offset), size, stride, ..]) => {
            let (shape, stride) = (ints(size)?, ints(stride)?);
            let offset = u64::try_from(*offset).map_err(|e| e.to_string())?;
            let needed =
                shape
                    .iter()
                    .zip(&stride)
                    .try_fold(1u64, |acc, (&n, &s)| if n == 0 { Some(acc) } else { acc.checked_add((n - 1).checked_mul(s)?) });
            if needed.and_then(|n| n.checked_add(offset)).is_none_or(|n| n > *numel && !shape.contains(&0)) {
                return Err(format!("tensor view {shape:?} at offset {offset} exceeds its storage of {numel} elements"));
            }
            Ok(Value::Tensor { dtype: dtype.clone(), key: key.clone(), offset, shape, stride })
        }
        ("torch._utils._rebuild_parameter", [t @ Value::Tensor { .. }, ..]) => Ok(t.clone()),
        _ => Err(format!("{f} called with unexpected arguments")),
    }
}

fn persistent(pid: Value) -> Result<Value, String> {
    match pid {
        Value::Tuple(t) => match t.as_slice() {
            [Value::Str(kind), Value::Global(ty), Value::Str(key), _location, Value::Int(numel)] if kind == "storage" => {
                Ok(Value::Storage {
                    dtype: ty.trim_start_matches("torch.").into(),
                    key: key.clone(),
                    numel: u64::try_from(*numel).map_err(|e| e.to_string())?,
                })
            }
            _ => Err("persistent id is not a storage record".into()),
        },
        _ => Err("persistent id is not a tuple".into()),
    }
}

/// Unpickles `data` into a [`Value`] tree.
pub fn load(data: &[u8]) -> Result<Value, String> {
    let mut r = Reader { b: data, at: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: Vec<Value> = Vec::new();
    let pop_mark = |stack: &mut Vec<Value>| -> Result<Vec<Value>, String> {
        let m = stack.iter().rposition(|v| *v == Value::Mark).ok_or("MARK missing")?;
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items)
    };
    loop {
        if stack.len() > MAX_STACK || memo.len() > MAX_MEMO {
            return Err("pickle nests too deep".into());
        }
        let op = r.u8()?;
        let pop = |s: &mut Vec<Value>| s.pop().ok_or_else(|| format!("stack underflow at opcode {op:#04x}"));
        match op {
            0x80 => {
                r.u8()?;
            } // PROTO
            0x95 => {
                r.take(8)?;
            } // FRAME
            b'.' => return pop(&mut stack),
            b'(' => stack.push(Value::Mark),
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'J' => stack.push(Value::Int(i32::from_le_bytes(r.take(4)?.try_into().expect("4")) as i64)),
            b'K' => stack.push(Value::Int(r.u8()? as i64)),
            b'M' => stack.push(Value::Int(u16::from_le_bytes(r.take(2)?.try_into().expect("2")) as i64)),
            0x8a => {
                let n = r.u8()? as usize;
                let b = r.take(n)?;
                if n > 8 {
                    return Err("integer wider than 64 bits".into());
                }
                let mut v = [if b.last().is_some_and(|x| x & 0x80 != 0) { 0xff } else { 0 }; 8];
                v[..n].copy_from_slice(b);
                stack.push(Value::Int(i64::from_le_bytes(v)));
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(r.take(8)?.try_into().expect("8")))),
            b'X' | 0x8c | b'B' | b'C' | 0x8e => {
                let n = match op {
                    0x8c | b'C' => r.u8()? as usize,
                    0x8e => u64::from_le_bytes(r.take(8)?.try_into().expect("8")) as usize,
                    _ => r.u32()? as usize,
                };
                let b = r.take(n)?.to_vec();
                stack.push(if op == b'X' || op == 0x8c {
                    Value::Str(String::from_utf8(b).map_err(|e| e.to_string())?)
                } else {
                    Value::Bytes(b)
                });
            }
            b'c' => {
                let (m, n) = (r.line()?, r.line()?);
                stack.push(global(&m, &n)?);
            }
            0x93 => {
                let (n, m) = (pop(&mut stack)?, pop(&mut stack)?);
                match (m, n) {
                    (Value::Str(m), Value::Str(n)) => stack.push(global(&m, &n)?),
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'q' => {
                let i = r.u8()? as usize;
                memo_put(&mut memo, i, stack.last().ok_or("BINPUT on empty stack")?.clone())?;
            }
            b'r' => {
                let i = r.u32()? as usize;
                memo_put(&mut memo, i, stack.last().ok_or("LONG_BINPUT on empty stack")?.clone())?;
            }
            0x94 => {
                let i = memo.len();
                memo_put(&mut memo, i, stack.last().ok_or("MEMOIZE on empty stack")?.clone())?;
            }
            b'h' | b'j' => {
                let i = if op == b'h' { r.u8()? as usize } else { r.u32()? as usize };
                stack.push(memo.get(i).cloned().ok_or_else(|| format!("memo {i} unset"))?);
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("stack underflow in TUPLE".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(persistent(pid)?);
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                match (f, args) {
                    (Value::Global(f), Value::Tuple(a)) => stack.push(call(&f, a)?),
                    _ => return Err("REDUCE needs a global and a tuple".into()),
                }
            }
            b'b' => {
                // BUILD on an OrderedDict sets attributes such as `_metadata`: irrelevant to weights.
                pop(&mut stack)?;
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.push(v),
                    _ => return Err("APPEND to a non-list".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err("APPENDS to a non-list".into()),
                }
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    vec![k, v]
                } else {
                    pop_mark(&mut stack)?
                };
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of items".into());
                }
                match stack.last_mut() {
                    Some(Value::Dict(d)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            other => return Err(format!("pickle opcode {other:#04x} ({:?}) is not allowed in a checkpoint", other as char)),
        }
    }
}

/// The memo holds copies, not shared references: a state dict only memoizes
/// immutable things (globals, strings, tensors), so a copy reads the same.
fn memo_put(memo: &mut Vec<Value>, i: usize, v: Value) -> Result<(), String> {
    // Picklers number memo slots in order; a far-off index is hostile.
    if i > memo.len() + 1024 {
        return Err(format!("memo index {i} out of bounds"));
    }
    if i >= memo.len() {
        memo.resize(i + 1, Value::None);
    }
    memo[i] = v;
    Ok(())
}
