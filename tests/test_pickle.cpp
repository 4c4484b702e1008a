// Tests of the allowlisting unpickler (core/interop/pickle.hpp) on hand-assembled
// pickles: every accepted opcode, every refusal with its code and the name it
// must mention, the structure limits, and no crash on damaged input.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "alloc_tracking.hpp"
#include "pickle.hpp"
#include "pickle_builder.hpp"

using namespace modelkeep;

namespace {

using Bytes = std::vector<std::uint8_t>;

using mkt::P;

Status run(const Bytes& b, Unpickled& u, bool legacy = false) { return unpickle(b.data(), b.size(), legacy, u); }

Status run(const Bytes& b, bool legacy = false) {
    Unpickled u;
    return run(b, u, legacy);
}

#define EXPECT_REFUSED(bytes, code_, needle)                                         \
    do {                                                                             \
        const Status st_ = run(bytes);                                               \
        EXPECT_EQ(st_.code(), Code::code_) << st_.to_string();                       \
        EXPECT_NE(st_.message().find(needle), std::string::npos) << st_.to_string(); \
    } while (0)

}  // namespace

TEST(Pickle, ReadsAStateDictLikeTorchWritesIt) {
    P p;
    p.global("collections", "OrderedDict").op(')').op('R').op('q').le(0, 1).op('(');
    p.str("fc1.weight").tensor2d("0", 5, 3);
    p.str("fc1.bias").tensor2d("1", 1, 5);
    p.op('u');
    p.op('}').str("_metadata").global("collections", "OrderedDict").op(')').op('R').op('s').op('b').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    ASSERT_EQ(u.root->kind, Value::Kind::dict);
    ASSERT_EQ(u.root->entries.size(), 2u);
    const Value* w = u.root->get("fc1.weight");
    ASSERT_TRUE(w && w->kind == Value::Kind::tensor);
    EXPECT_EQ(w->shape, (std::vector<std::uint64_t>{5, 3}));
    EXPECT_EQ(w->stride, (std::vector<std::uint64_t>{3, 1}));
    EXPECT_EQ(w->storage->text, "0");
    EXPECT_EQ(w->storage->numel, 15u);
    EXPECT_EQ(w->storage->storage_type, StorageType::f32);
    EXPECT_EQ(u.globals, (std::vector<std::string>{"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                   "torch.FloatStorage"}));
    EXPECT_EQ(u.consumed, p.b.size());
}

TEST(Pickle, EveryIntegerAndFloatEncoding) {
    P p;
    p.op('(').int1(200).op('M').le(60000, 2).op('J').le(std::uint64_t(std::uint32_t(-5)), 4);
    p.long1(std::int64_t(1) << 40).long1(-3, 1).long1(0, 0).op(0x8b).le(2, 4).le(0x0102, 2);
    p.op('G').raw(std::string("\x3f\xf8\0\0\0\0\0\0", 8));  // 1.5, big-endian
    p.op('t').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    const auto& it = u.root->items;
    ASSERT_EQ(it.size(), 8u);
    EXPECT_EQ(it[0]->integer, 200);
    EXPECT_EQ(it[1]->integer, 60000);
    EXPECT_EQ(it[2]->integer, -5);
    EXPECT_EQ(it[3]->integer, std::int64_t(1) << 40);
    EXPECT_EQ(it[4]->integer, -3);
    EXPECT_EQ(it[5]->integer, 0);
    EXPECT_EQ(it[6]->integer, 0x0102);
    EXPECT_EQ(it[7]->floating, 1.5);
    P wide;
    wide.long1(1, 9).stop();
    EXPECT_REFUSED(wide.b, bad_pickle, "wider than 64 bits");
}

TEST(Pickle, Protocol4OpcodesAndStackGlobalGoThroughTheAllowlist) {
    P p(4);
    p.op(0x95).le(0, 8);  // FRAME
    p.short_str("collections").op(0x94).short_str("OrderedDict").op(0x94).op(0x93).op(0x94).op(')').op('R');
    p.op(0x94).op('(').short_str("k").op(0x8f).op('(').int1(1).op(0x90).op('u').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    ASSERT_EQ(u.root->kind, Value::Kind::dict);
    EXPECT_EQ(u.root->get("k")->kind, Value::Kind::set);
    P evil(4);
    evil.short_str("posix").short_str("system").op(0x93).short_str("touch /tmp/x").op(0x85).op('R').stop();
    EXPECT_REFUSED(evil.b, disallowed_global, "posix.system");
}

TEST(Pickle, RefusesDangerousGlobalsByName) {
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"posix", "system"},
        {"nt", "system"},
        {"os", "system"},
        {"__builtin__", "eval"},
        {"builtins", "exec"},
        {"builtins", "getattr"},
        {"subprocess", "Popen"},
        {"torch.storage", "_load_from_bytes"},
        {"torch", "load"},
        {"torch.serialization", "load"},
        {"numpy", "load"},
        {"shutil", "rmtree"},
        {"importlib", "import_module"},
        {"pickle", "loads"},
        {"_codecs", "decode"},
        {"sys", "modules"},
        {"collections", "defaultdict"},
        {"os.path", "join"},
    };
    for (const auto& [m, n] : refused) {
        P p;
        p.global(m, n).str("echo pwned").op(0x85).op('R').stop();
        const Status st = run(p.b);
        EXPECT_EQ(st.code(), Code::disallowed_global) << m << "." << n << ": " << st.to_string();
        EXPECT_NE(st.message().find(m + "." + n), std::string::npos) << st.to_string();
    }
    P bad_name;
    bad_name.global("a b", "c").stop();
    EXPECT_REFUSED(bad_name.b, disallowed_global, "not a module path");
}

TEST(Pickle, ClassesAreInertRecordsAndCallingThemIsRefused) {
    P call;
    call.global("__main__", "Model").op(')').op('R').stop();
    EXPECT_REFUSED(call.b, disallowed_global, "calls __main__.Model");
    P args;
    args.global("__main__", "Model").int1(1).op(0x85).op(0x81).stop();
    EXPECT_REFUSED(args.b, disallowed_global, "with arguments");
    P newobj_fn;
    newobj_fn.global("torch._utils", "_rebuild_tensor_v2").op(')').op(0x81).stop();
    EXPECT_REFUSED(newobj_fn.b, disallowed_global, "NEWOBJ of torch._utils._rebuild_tensor_v2");

    P ok;
    ok.global("__main__", "Model").op(')').op(0x81).op('}').op('(').str("_parameters").op('}').str("n").int1(3);
    ok.op('u').op('b').stop();
    Unpickled u;
    ASSERT_TRUE(run(ok.b, u).ok()) << run(ok.b).to_string();
    EXPECT_EQ(u.root->kind, Value::Kind::module);
    EXPECT_EQ(u.root->text, "__main__.Model");
    EXPECT_EQ(u.root->get("n")->integer, 3);
    P twice = ok;
    twice.b.pop_back();
    twice.op('}').op('b').stop();
    EXPECT_REFUSED(twice.b, bad_pickle, "BUILD twice");
}

TEST(Pickle, RefusesOpcodesTorchNeverWrites) {
    const std::vector<std::pair<std::uint8_t, const char*>> ops = {
        {'i', "INST"},
        {'o', "OBJ"},
        {0x82, "EXT1"},
        {0x83, "EXT2"},
        {0x84, "EXT4"},
        {'P', "PERSID"},
        {'S', "STRING"},
        {'V', "UNICODE"},
        {'g', "GET"},
        {'p', "PUT"},
        {'d', "DICT"},
        {'l', "LIST"},
        {'0', "POP"},
        {'1', "POP_MARK"},
        {'2', "DUP"},
        {'F', "FLOAT"},
        {'I', "INT"},
        {'L', "LONG"},
        {0x91, "FROZENSET"},
        {0x92, "NEWOBJ_EX"},
        {0x96, "BYTEARRAY8"},
        {0x97, "NEXT_BUFFER"},
        {0x98, "READONLY_BUFFER"},
    };
    for (const auto& [op, name] : ops) {
        P p;
        p.op('N').op(op).stop();
        const Status st = run(p.b);
        EXPECT_EQ(st.code(), Code::disallowed_opcode) << name << ": " << st.to_string();
        EXPECT_NE(st.message().find(name), std::string::npos) << st.to_string();
    }
    P unknown;
    unknown.op(0xff).stop();
    EXPECT_REFUSED(unknown.b, bad_pickle, "unknown opcode 0xff");
}

TEST(Pickle, RefusesMalformedStructure) {
    P setitems_on_list;
    setitems_on_list.op(']').op('(').str("k").int1(1).op('u').stop();
    EXPECT_REFUSED(setitems_on_list.b, bad_pickle, "SETITEMS on a list");
    P append_on_dict;
    append_on_dict.op('}').int1(1).op('a').stop();
    EXPECT_REFUSED(append_on_dict.b, bad_pickle, "APPEND on a dict");
    P underflow;
    underflow.op('R').stop();
    EXPECT_REFUSED(underflow.b, bad_pickle, "stack underflow");
    P two;
    two.op('N').op('N').stop();
    EXPECT_REFUSED(two.b, bad_pickle, "2 values");
    P no_stop;
    no_stop.op('N');
    EXPECT_REFUSED(no_stop.b, bad_pickle, "no STOP");
    P memo;
    memo.op('h').le(7, 1).stop();
    EXPECT_REFUSED(memo.b, bad_pickle, "memo entry 7");
    P open_mark;
    open_mark.op('(').op('N').stop();
    EXPECT_REFUSED(open_mark.b, bad_pickle, "open MARK");
    P no_proto(-1);
    no_proto.op('N').stop();
    EXPECT_REFUSED(no_proto.b, bad_pickle, "PROTO");
    P proto6(6);
    proto6.op('N').stop();
    EXPECT_REFUSED(proto6.b, bad_pickle, "protocol 6");
    P long_string;
    long_string.op('X').le(1000, 4).raw("short").stop();
    EXPECT_REFUSED(long_string.b, bad_pickle, "ends inside a string");
    P bad_utf8;
    bad_utf8.str("\xff\xfe").stop();
    EXPECT_REFUSED(bad_utf8.b, bad_pickle, "not UTF-8");
}

TEST(Pickle, NoCyclesAndNoChangesAfterUse) {
    P self;  // l = []; l.append(l)
    self.op(']').op('q').le(0, 1).op('h').le(0, 1).op('a').stop();
    EXPECT_REFUSED(self.b, bad_pickle, "into itself");
    P later;  // a = []; b = [a]; a.append(b)
    later.op(']').op('q').le(0, 1).op(']').op('h').le(0, 1).op('a').op('q').le(1, 1).op('h').le(0, 1);
    later.op('h').le(1, 1).op('a').stop();
    EXPECT_REFUSED(later.b, bad_pickle, "already in use");
    P deep;
    for (int i = 0; i < 300; ++i) deep.op(']');
    for (int i = 0; i < 299; ++i) deep.op('a');
    deep.stop();
    EXPECT_REFUSED(deep.b, limit_exceeded, "nested deeper");
}

TEST(Pickle, PersistentIdsAreOnlyStorages) {
    P module_id;
    module_id.op('(').str("module").global("__main__", "Model").str("/home/x.py").str("source").op('t').op('Q').stop();
    EXPECT_REFUSED(module_id.b, disallowed_persistent_id, "('storage', ...)");
    EXPECT_EQ(run(module_id.b, true).code(), Code::legacy_module);
    P not_tuple;
    not_tuple.str("storage").op('Q').stop();
    EXPECT_REFUSED(not_tuple.b, disallowed_persistent_id, "not a tuple");
    P four;
    four.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").op('t').op('Q').stop();
    EXPECT_REFUSED(four.b, disallowed_persistent_id, "4 fields");
    P not_class;
    not_class.op('(').str("storage").global("collections", "OrderedDict").str("0").str("cpu").int1(1).op('t');
    not_class.op('Q').stop();
    EXPECT_REFUSED(not_class.b, disallowed_persistent_id, "not a torch storage class");
    P conflicting;
    conflicting.op('(').storage("FloatStorage", "0", 4).storage("FloatStorage", "0", 5).op('t').stop();
    EXPECT_REFUSED(conflicting.b, bad_pickle, "declared twice");
    P legacy;
    legacy.op('(').str("storage").global("torch", "FloatStorage").str("9").str("cpu").int1(2).op('N').op('t');
    legacy.op('Q').stop();
    Unpickled u;
    ASSERT_TRUE(run(legacy.b, u, true).ok()) << run(legacy.b, true).to_string();
    EXPECT_EQ(u.root->kind, Value::Kind::storage);
    EXPECT_EQ(u.root->numel, 2u);
}

TEST(Pickle, TensorArgumentsAreChecked) {
    P five;
    five.global("torch._utils", "_rebuild_tensor_v2").op('(').storage("FloatStorage", "0", 4).int1(0);
    five.int1(4).op(0x85).int1(1).op(0x85).op(0x89).op('t').op('R').stop();
    EXPECT_REFUSED(five.b, bad_pickle, "6 or 7 arguments, not 5");
    P negative;
    negative.global("torch._utils", "_rebuild_tensor_v2").op('(').storage("FloatStorage", "0", 4).int1(0);
    negative.long1(-4).op(0x85).int1(1).op(0x85).op(0x89).op('}').op('t').op('R').stop();
    EXPECT_REFUSED(negative.b, bad_pickle, "negative");
    P ragged;
    ragged.global("torch._utils", "_rebuild_tensor_v2").op('(').storage("FloatStorage", "0", 4).int1(0);
    ragged.int1(4).op(0x85).op(')').op(0x89).op('}').op('t').op('R').stop();
    EXPECT_REFUSED(ragged.b, bad_pickle, "differ in length");
    P conj;
    conj.global("torch._utils", "_rebuild_tensor_v2").op('(').storage("FloatStorage", "0", 4).int1(0);
    conj.int1(4).op(0x85).int1(1).op(0x85).op(0x89).op('}').op('}').str("conj").op(0x88).op('s').op('t');
    conj.op('R').stop();
    EXPECT_REFUSED(conj.b, unsupported_tensor, "conj");
    P quantized;
    quantized.global("torch._utils", "_rebuild_qtensor").stop();
    EXPECT_REFUSED(quantized.b, unsupported_tensor, "_rebuild_qtensor");
    P complex;
    complex.global("torch", "ComplexFloatStorage").stop();
    EXPECT_REFUSED(complex.b, unsupported_tensor, "ComplexFloatStorage");

    P param;
    param.global("torch._utils", "_rebuild_parameter").op('(').tensor2d("0", 2, 2).op(0x88);
    param.global("collections", "OrderedDict").op(')').op('R').op('t').op('R').stop();
    Unpickled u;
    ASSERT_TRUE(run(param.b, u).ok()) << run(param.b).to_string();
    EXPECT_EQ(u.root->kind, Value::Kind::tensor);
    EXPECT_TRUE(u.root->parameter);
}

TEST(Pickle, CodecsEncodeMakesLatin1BytesOnly) {
    P ok;
    ok.global("_codecs", "encode").str("a\xc3\xa9").str("latin1").op(0x86).op('R').stop();
    Unpickled u;
    ASSERT_TRUE(run(ok.b, u).ok()) << run(ok.b).to_string();
    EXPECT_EQ(u.root->kind, Value::Kind::bytes);
    EXPECT_EQ(u.root->text, std::string("a\xe9"));
    P other;
    other.global("_codecs", "encode").str("abc").str("rot13").op(0x86).op('R').stop();
    EXPECT_REFUSED(other.b, disallowed_global, "latin1");
}

TEST(Pickle, DamagedInputNeverCrashes) {
    P p;
    p.global("collections", "OrderedDict").op(')').op('R').op('q').le(0, 1).op('(');
    for (int i = 0; i < 4; ++i) p.str("t" + std::to_string(i)).tensor2d(std::to_string(i), 2, 3);
    p.op('u').stop();
    ASSERT_TRUE(run(p.b).ok());
    for (std::size_t n = 0; n < p.b.size(); ++n) {
        const Bytes cut(p.b.begin(), p.b.begin() + std::ptrdiff_t(n));
        EXPECT_FALSE(run(cut).ok()) << "truncated to " << n;
    }
    std::mt19937 rng(7);
    for (std::size_t i = 0; i < p.b.size(); ++i)
        for (int k = 0; k < 24; ++k) {
            Bytes flipped = p.b;
            flipped[i] = std::uint8_t(rng());
            Unpickled u;
            (void)run(flipped, u);  // any outcome but a crash (ASan/UBSan builds check the rest)
        }
    for (int k = 0; k < 2000; ++k) {
        Bytes garbage(2 + rng() % 200);
        for (auto& c : garbage) c = std::uint8_t(rng());
        garbage[0] = 0x80;
        garbage[1] = 2;
        Unpickled u;
        (void)run(garbage, u);
    }
}

// Floods: each refused early, with limit_exceeded, in little time and memory
// (every value, item and memo entry is counted before it is allocated).
TEST(Pickle, FloodsAreRefusedBeforeTheyCost) {
    struct Flood {
        const char* what;
        Bytes bytes;
    };
    const std::size_t n = 24u << 20;  // 24 M opcodes, a 24-48 MB pickle
    std::vector<Flood> floods;
    {  // None pushed until the values' memory runs out
        P p;
        p.b.resize(p.b.size() + n, 'N');
        floods.push_back({"None flood", p.b});
    }
    {  // one value read from the memo again and again: the stack grows
        P p;
        p.op('N').op('q').le(0, 1);
        for (std::size_t i = 0; i < n / 2; ++i) p.op('h').le(0, 1);
        floods.push_back({"memo GET flood", p.b});
    }
    {  // MEMOIZE again and again: the memo grows
        P p(4);
        p.op('N');
        p.b.resize(p.b.size() + n, 0x94);
        floods.push_back({"MEMOIZE flood", p.b});
    }
    {  // work without memory: the same memo slot written again and again, past the opcode cap
        P p;
        p.op('N');
        for (std::size_t i = 0; i < n; ++i) p.op('q').le(0, 1);
        floods.push_back({"BINPUT flood", p.b});
    }
    {  // one long list: APPEND after APPEND
        P p;
        p.op(']');
        for (std::size_t i = 0; i < n / 2; ++i) p.op('N').op('a');
        floods.push_back({"APPEND flood", p.b});
    }
    for (const Flood& f : floods) {
        Unpickled out;
        const auto start = std::chrono::steady_clock::now();
        const mkt::AllocScope scope;
        const Status st = unpickle(f.bytes.data(), f.bytes.size(), false, out);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        EXPECT_EQ(st.code(), Code::limit_exceeded) << f.what << ": " << st.to_string();
        EXPECT_LE(scope.peak(), std::uint64_t(64) << 20) << f.what;
#if !defined(__SANITIZE_ADDRESS__)  // (sanitizers slow everything several times)
        EXPECT_LE(seconds, 1.0) << f.what;
#else
        (void)seconds;
#endif
    }
}

TEST(Pickle, InertDictsOfOtherSpellings) {
    // collections.Counter({'a': 2}) as Python pickles it: REDUCE (Counter, ({'a': 2},)).
    P counter;
    counter.global("collections", "Counter").op('}').short_str("a").int1(2).op('s').op(0x85).op('R').stop();
    Unpickled u;
    const Status cs = unpickle(counter.b.data(), counter.b.size(), false, u);
    ASSERT_TRUE(cs.ok()) << cs.to_string();
    ASSERT_EQ(u.root->kind, Value::Kind::dict);
    ASSERT_NE(u.root->get("a"), nullptr);
    EXPECT_EQ(u.root->get("a")->integer, 2);
    // Python 2's OrderedDict: REDUCE (OrderedDict, ([['k', 1], ['j', 2]],)).
    P py2;
    py2.global("collections", "OrderedDict").op(']').op('(');
    py2.op(']').op('(').short_str("k").int1(1).op('e').op(']').op('(').short_str("j").int1(2).op('e');
    py2.op('e').op(0x85).op('R').stop();
    ASSERT_TRUE(unpickle(py2.b.data(), py2.b.size(), false, u).ok()) << "py2 OrderedDict";
    ASSERT_EQ(u.root->kind, Value::Kind::dict);
    ASSERT_EQ(u.root->entries.size(), 2u);
    EXPECT_EQ(u.root->get("j")->integer, 2);
    // Anything else as its argument is refused.
    P bad;
    bad.global("collections", "OrderedDict").int1(3).op(0x85).op('R').stop();
    EXPECT_EQ(unpickle(bad.b.data(), bad.b.size(), false, u).code(), Code::bad_pickle);
}

TEST(Pickle, Torch03LegacyViewsAndTheFirstRebuildTensor) {
    // torch 0.3/0.4: _rebuild_tensor(storage, offset, size, stride), and a storage id
    // whose sixth field makes it a slice (view_key, offset, size) of its root storage.
    P p;
    p.global("torch._utils", "_rebuild_tensor").op('(');
    p.op('(').str("storage").global("torch", "FloatStorage").str("root").str("cpu").int1(10);
    p.op('(').str("view").int1(4).int1(6).op('t');  // the slice [4, 10) of root
    p.op('t').op('Q');
    p.int1(1).int1(2).int1(3).op(0x86).int1(3).int1(1).op(0x86).op('t').op('R').stop();
    Unpickled u;
    const Status st = run(p.b, u, true);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(u.root->kind, Value::Kind::tensor);
    EXPECT_EQ(u.root->storage->text, "root");  // the data is the root's
    EXPECT_EQ(u.root->storage->numel, 10u);    // bounded by the root
    EXPECT_EQ(u.root->offset, 5u);             // 1 into a slice that starts at 4
    EXPECT_EQ(u.root->shape, (std::vector<std::uint64_t>{2, 3}));
    // A slice past its root, and the v1 signature with the v2 arguments, are refused.
    P past;
    past.op('(').str("storage").global("torch", "FloatStorage").str("root").str("cpu").int1(10);
    past.op('(').str("view").int1(8).int1(6).op('t').op('t').op('Q').stop();
    EXPECT_EQ(run(past.b, u, true).code(), Code::view_out_of_bounds);
    P six;
    six.global("torch._utils", "_rebuild_tensor").op('(').storage("FloatStorage", "0", 4).int1(0);
    six.int1(4).op(0x85).int1(1).op(0x85).op(0x89).op('}').op('t').op('R').stop();
    EXPECT_EQ(run(six.b, u).code(), Code::bad_pickle);
}

TEST(Pickle, InertValuesBesideTheTensors) {
    // {'size': torch.Size((2, 3)), 'device': torch.device('cuda', 0), 'dtype': torch.float32,
    //  'when': datetime.datetime(b'...'), 'path': pathlib.PosixPath('runs', 'a'), 'tags': frozenset(['x'])}
    P p;
    p.op('}').op('(');
    p.short_str("size").global("torch", "Size").int1(2).int1(3).op(0x86).op(0x85).op('R');
    p.short_str("device").global("torch", "device").short_str("cuda").int1(0).op(0x86).op('R');
    p.short_str("dtype").global("torch", "float32");
    p.short_str("when").global("datetime", "datetime").op('C').le(10, 1).raw("0123456789").op(0x85).op('R');
    p.short_str("path").global("pathlib", "PosixPath").short_str("runs").short_str("a").op(0x86).op('R');
    p.short_str("tags").global("builtins", "frozenset").op(']').short_str("x").op('a').op(0x85).op('R');
    p.op('u').stop();
    Unpickled u;
    const Status st = unpickle(p.b.data(), p.b.size(), false, u);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(u.root->get("size")->kind, Value::Kind::tuple);
    EXPECT_EQ(u.root->get("size")->items[1]->integer, 3);
    EXPECT_EQ(u.root->get("device")->text, "torch.device('cuda', 0)");
    EXPECT_EQ(u.root->get("path")->text, "pathlib.PosixPath('runs', 'a')");
    EXPECT_EQ(u.root->get("tags")->kind, Value::Kind::set);
    // Calling a dtype, or any other torch or builtins name, is still refused.
    P call;
    call.global("torch", "float32").op(')').op('R').stop();
    EXPECT_EQ(unpickle(call.b.data(), call.b.size(), false, u).code(), Code::disallowed_global);
    P other;
    other.global("builtins", "getattr").op(')').op('R').stop();
    EXPECT_EQ(unpickle(other.b.data(), other.b.size(), false, u).code(), Code::disallowed_global);
}
