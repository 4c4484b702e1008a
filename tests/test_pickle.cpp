// Tests of the allowlisting unpickler (core/interop/pickle.hpp) on hand-assembled
// pickles: every accepted opcode, every refusal with its code and the name it
// must mention, the structure limits, and no crash on damaged input.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
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

TEST(Pickle, TextNumbersAsProtocol0WritesThem) {
    // FLOAT repr(x)\n, INT digits\n (01/00: True/False), LONG digitsL\n.
    P p;
    p.op('(').raw("F0.25\n").raw("F-1e-05\n").raw("Finf\n").raw("F-inf\n").raw("Fnan\n");
    p.raw("I42\n").raw("I-7\n").raw("I01\n").raw("I00\n").raw("L123L\n").raw("L-9223372036854775808\n");
    p.op('t').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    const auto& it = u.root->items;
    ASSERT_EQ(it.size(), 11u);
    EXPECT_EQ(it[0]->floating, 0.25);
    EXPECT_EQ(it[1]->floating, -1e-05);
    EXPECT_EQ(it[2]->floating, HUGE_VAL);
    EXPECT_EQ(it[3]->floating, -HUGE_VAL);
    EXPECT_TRUE(std::isnan(it[4]->floating));
    EXPECT_EQ(it[5]->integer, 42);
    EXPECT_EQ(it[6]->integer, -7);
    EXPECT_EQ(it[7]->kind, Value::Kind::boolean);
    EXPECT_TRUE(it[7]->boolean);
    EXPECT_FALSE(it[8]->boolean);
    EXPECT_EQ(it[9]->integer, 123);
    EXPECT_EQ(it[10]->integer, INT64_MIN);
    for (const char* bad :
         {"F0x1p3\n", "F\n", "F1.0", "I12a\n", "I\n", "L99999999999999999999\n", "I9223372036854775808\n"}) {
        P q;
        q.raw(bad).stop();
        EXPECT_EQ(run(q.b).code(), Code::bad_pickle) << bad;
    }
    P escape;
    escape.raw("F\x1b[31m\n").stop();
    EXPECT_REFUSED(escape.b, bad_pickle, "\\x1b[31m");  // named, escaped
    P long_line;
    long_line.raw("F" + std::string(100, '1') + "\n").stop();
    EXPECT_REFUSED(long_line.b, bad_pickle, "longer than 64 bytes");
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
        {0x91, "FROZENSET"},
        {0x92, "NEWOBJ_EX"},
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
        // The budget is 1 s on an idle machine (each time is printed); 3 s here, so that a loaded
        // machine does not fail the run while a cost that grows with the input still does.
        EXPECT_LE(seconds, 3.0) << f.what;
        std::printf("[ flood    ] %s: %.3f s, peak %.1f MiB\n", f.what, seconds, double(scope.peak()) / 1048576);
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

namespace {

// numpy.dtype(code, False, True) with BUILD (3, order, None, None, None, -1, -1, 0), as numpy pickles it.
void np_dtype(P& p, const std::string& code, const std::string& order, bool structured = false) {
    p.global("numpy", "dtype").str(code).op(0x89).op(0x88).op(0x87).op('R');
    p.op('(').int1(3).str(order).op('N');
    if (structured)
        p.str("a").op(0x85).op('}');
    else
        p.op('N').op('N');
    p.op('J').le(0xffffffffu, 4).op('J').le(0xffffffffu, 4).int1(0).op('t').op('b');
}

// _reconstruct(numpy.ndarray, (0,), b'b') BUILD (1, shape, dtype, fortran, raw), numpy 1's spelling by default.
void np_array(P& p, const std::vector<int>& shape, const std::string& code, const std::string& order,
              const std::string& raw, bool fortran = false, const std::string& core = "numpy.core") {
    p.global(core + ".multiarray", "_reconstruct").global("numpy", "ndarray").int1(0).op(0x85);
    p.op('C').le(1, 1).raw("b").op(0x87).op('R');
    p.op('(').int1(1).op('(');
    for (int d : shape) p.op('M').le(std::uint64_t(d), 2);
    p.op('t');
    np_dtype(p, code, order);
    p.op(fortran ? 0x88 : 0x89).op('B').le(raw.size(), 4).raw(raw).op('t').op('b');
}

std::string f32_bytes(std::initializer_list<float> v) {
    std::string s;
    for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
    return s;
}

}  // namespace

TEST(Pickle, NumpyArraysBecomeTensorsWithTheirDataInline) {
    P p;
    p.op('(');
    np_array(p, {2, 3}, "f4", "<", f32_bytes({1, 2, 3, 4, 5, 6}));
    np_array(p, {2, 3}, "f4", "<", f32_bytes({1, 2, 3, 4, 5, 6}), true, "numpy._core");  // numpy 2, Fortran order
    const double big[] = {0.5, -2.0};
    std::string be;
    for (double d : big)
        for (int i = 7; i >= 0; --i) be += reinterpret_cast<const char*>(&d)[i];
    np_array(p, {2}, "f8", ">", be);
    p.op('t').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    ASSERT_EQ(u.root->items.size(), 3u);
    const Value& c = *u.root->items[0];
    ASSERT_EQ(c.kind, Value::Kind::tensor);
    EXPECT_EQ(c.shape, (std::vector<std::uint64_t>{2, 3}));
    EXPECT_EQ(c.stride, (std::vector<std::uint64_t>{3, 1}));
    EXPECT_EQ(c.storage->storage_type, StorageType::f32);
    EXPECT_EQ(c.storage->numel, 6u);
    ASSERT_TRUE(c.storage->storage);
    EXPECT_EQ(c.storage->storage->text, f32_bytes({1, 2, 3, 4, 5, 6}));
    const Value& f = *u.root->items[1];
    ASSERT_EQ(f.kind, Value::Kind::tensor);
    EXPECT_EQ(f.stride, (std::vector<std::uint64_t>{1, 2}));  // column-major
    EXPECT_NE(f.storage->text, c.storage->text);              // each array its own storage
    const Value& d = *u.root->items[2];
    ASSERT_EQ(d.kind, Value::Kind::tensor);
    EXPECT_EQ(d.storage->storage_type, StorageType::f64);
    std::string le(reinterpret_cast<const char*>(big), 16);
    EXPECT_EQ(d.storage->storage->text, le);  // swapped to little-endian
    // No torch global is named; numpy's are listed as they are.
    EXPECT_EQ(u.globals[0], "numpy.core.multiarray._reconstruct");
}

TEST(Pickle, NumpyValuesWithoutATensorDtypeStayInertDescriptions) {
    P p;
    p.op('(');
    np_array(p, {2}, "c16", "<", std::string(32, '\0'));  // complex
    // An object array: its data is a list of objects, read and dropped.
    p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").int1(0).op(0x85);
    p.op('C').le(1, 1).raw("b").op(0x87).op('R').op('(').int1(1).op('(').int1(1).op('t');
    np_dtype(p, "O8", "|");
    p.op(0x89).op(']').str("x").op('a').op('t').op('b');
    // A structured dtype: no tensor even for float fields.
    p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").int1(0).op(0x85);
    p.op('C').le(1, 1).raw("b").op(0x87).op('R').op('(').int1(1).op('(').int1(1).op('t');
    np_dtype(p, "V4", "|", true);
    p.op(0x89).op('B').le(4, 4).raw("abcd").op('t').op('b');
    p.op('t').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    for (const auto& v : u.root->items) {
        EXPECT_EQ(v->kind, Value::Kind::string);
        EXPECT_TRUE(v->inert);
    }
    EXPECT_EQ(u.root->items[0]->text, "numpy.ndarray(<c16, (2))");
    EXPECT_EQ(u.root->items[1]->text, "numpy.ndarray(|O8, (1))");
    EXPECT_EQ(u.root->items[2]->text, "numpy.ndarray(|V, (1))");
}

TEST(Pickle, NumpyScalarsAndRandomState) {
    P p;
    p.op('(');
    const double quarter = 0.25;
    p.global("numpy.core.multiarray", "scalar");
    np_dtype(p, "f8", "<");
    p.op('B').le(8, 4).raw(std::string(reinterpret_cast<const char*>(&quarter), 8)).op(0x86).op('R');
    p.global("numpy._core.multiarray", "scalar");
    np_dtype(p, "i2", "<");
    p.op('B').le(2, 4).raw("\xfd\xff").op(0x86).op('R');  // -3
    p.global("numpy.core.multiarray", "scalar");
    np_dtype(p, "b1", "|");
    p.op('B').le(1, 4).raw("\x01").op(0x86).op('R');
    p.global("numpy.core.multiarray", "scalar");
    np_dtype(p, "u8", "<");
    p.op('B').le(8, 4).raw(std::string(8, '\xff')).op(0x86).op('R');  // 2^64 - 1: a float
    // np.random.get_state(): ('MT19937', uint32 array of 624, pos, has_gauss, cached_gaussian)
    p.op('(').str("MT19937");
    np_array(p, {624}, "u4", "<", std::string(624 * 4, '\x07'));
    p.op('M').le(624, 2).int1(0).op('G').raw(std::string(8, '\0')).op('t');
    // np.random.RandomState(): a ctor of the bit generator's name, BUILD with its state dict.
    p.global("numpy.random._pickle", "__randomstate_ctor").str("MT19937").op(0x85).op('R');
    p.op('}').str("bit_generator").str("MT19937").op('s').op('b');
    // _frombuffer (protocol 5): a BYTEARRAY8 buffer, dtype, shape, order.
    p.global("numpy.core.numeric", "_frombuffer").op('(').op(0x96).le(8, 8).raw(f32_bytes({7, 8}));
    np_dtype(p, "f4", "<");
    p.int1(2).op(0x85).str("C").op('t').op('R');
    p.op('t').stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    const auto& it = u.root->items;
    ASSERT_EQ(it.size(), 7u);
    EXPECT_EQ(it[0]->kind, Value::Kind::floating);
    EXPECT_EQ(it[0]->floating, 0.25);
    EXPECT_EQ(it[1]->integer, -3);
    EXPECT_EQ(it[2]->kind, Value::Kind::boolean);
    EXPECT_TRUE(it[2]->boolean);
    EXPECT_EQ(it[3]->floating, 18446744073709551615.0);
    ASSERT_EQ(it[4]->kind, Value::Kind::tuple);
    EXPECT_EQ(it[4]->items[1]->kind, Value::Kind::tensor);
    EXPECT_EQ(it[4]->items[1]->storage->storage_type, StorageType::u32);
    EXPECT_TRUE(it[5]->inert);
    EXPECT_EQ(it[6]->kind, Value::Kind::tensor);
    EXPECT_EQ(it[6]->storage->storage->text, f32_bytes({7, 8}));
}

TEST(Pickle, NumpyIsReadNeverCalled) {
    P load;
    load.global("numpy", "load").str("x.npy").op(0x85).op('R').stop();
    EXPECT_REFUSED(load.b, disallowed_global, "numpy.load");
    P masked;  // _reconstruct of anything but numpy.ndarray
    masked.global("numpy.core.multiarray", "_reconstruct").global("numpy.ma.core", "MaskedArray");
    masked.int1(0).op(0x85).op('C').le(1, 1).raw("b").op(0x87).op('R').stop();
    EXPECT_REFUSED(masked.b, disallowed_global, "numpy.ma.core.MaskedArray");
    P reconstruct_other;
    reconstruct_other.global("numpy.core.multiarray", "_reconstruct").global("collections", "OrderedDict");
    reconstruct_other.int1(0).op(0x85).op('C').le(1, 1).raw("b").op(0x87).op('R').stop();
    EXPECT_REFUSED(reconstruct_other.b, disallowed_global, "_reconstruct(numpy.ndarray");
    P short_data;  // 2x3 float32 needs 24 bytes
    np_array(short_data, {2, 3}, "f4", "<", std::string(20, '\0'));
    short_data.stop();
    EXPECT_REFUSED(short_data.b, storage_size_mismatch, "20 bytes");
    P huge;  // 65535^2 float32 from 24 bytes
    np_array(huge, {65535, 65535, 65535, 65535, 65535}, "f4", "<", std::string(24, '\0'));
    huge.stop();
    EXPECT_EQ(run(huge.b).code(), Code::size_overflow);
    P scalar_size;
    scalar_size.global("numpy.core.multiarray", "scalar");
    np_dtype(scalar_size, "f8", "<");
    scalar_size.op('B').le(4, 4).raw("abcd").op(0x86).op('R').stop();
    EXPECT_REFUSED(scalar_size.b, bad_pickle, "4 bytes for a <f8 value");
    P dtype_call;  // a dtype is not a function of its state
    dtype_call.global("numpy", "dtype").op('N').op(0x85).op('R').stop();
    EXPECT_REFUSED(dtype_call.b, bad_pickle, "not a type code");
    P order;
    np_array(order, {1}, "f4", "!", f32_bytes({1}));
    order.stop();
    EXPECT_REFUSED(order.b, bad_pickle, "byte order '!'");
}

TEST(Pickle, Torch2TensorsV3FromTypeAndParametersWithState) {
    // _rebuild_tensor_v3(UntypedStorage of 8 bytes, 0, (4,), (1,), False, OrderedDict(), torch.uint16)
    const auto v3 = [](P& p, const std::string& dtype, int bytes) {
        p.global("torch._utils", "_rebuild_tensor_v3").op('(');
        p.op('(').str("storage").global("torch", "UntypedStorage").str("0").str("cpu").int1(bytes).op('t').op('Q');
        p.int1(0).int1(4).op(0x85).int1(1).op(0x85).op(0x89).global("collections", "OrderedDict").op(')').op('R');
        p.global("torch", dtype).op('t').op('R');
    };
    P p;
    v3(p, "uint16", 8);
    p.stop();
    Unpickled u;
    ASSERT_TRUE(run(p.b, u).ok()) << run(p.b).to_string();
    ASSERT_EQ(u.root->kind, Value::Kind::tensor);
    EXPECT_EQ(u.root->storage->storage_type, StorageType::u16);
    EXPECT_EQ(u.root->storage->numel, 4u);  // 8 bytes as uint16 values
    P odd;
    v3(odd, "uint32", 6);
    odd.stop();
    EXPECT_REFUSED(odd.b, storage_size_mismatch, "not a whole number of torch.uint32");
    P fp8;
    v3(fp8, "float8_e4m3fn", 4);
    fp8.stop();
    EXPECT_REFUSED(fp8.b, unsupported_tensor, "torch.float8_e4m3fn");
    P untyped_v2;  // an untyped storage has no dtype without v3
    untyped_v2.global("torch._utils", "_rebuild_tensor_v2").op('(');
    untyped_v2.op('(').str("storage").global("torch", "UntypedStorage").str("0").str("cpu").int1(8).op('t').op('Q');
    untyped_v2.int1(0).int1(2).op(0x85).int1(1).op(0x85).op(0x89).op('}').op('t').op('R').stop();
    EXPECT_REFUSED(untyped_v2.b, bad_pickle, "untyped storage outside _rebuild_tensor_v3");

    // _rebuild_from_type_v2(_rebuild_tensor_v2, torch._tensor.Tensor, (...), {'note': 1}): the tensor.
    P from_type;
    from_type.global("torch._tensor", "_rebuild_from_type_v2").op('(').global("torch._utils", "_rebuild_tensor_v2");
    from_type.global("torch._tensor", "Tensor").op('(');
    from_type.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").int1(3).op('t').op('Q');
    from_type.int1(0).int1(3).op(0x85).int1(1).op(0x85).op(0x89).op('}').op('t');
    from_type.op('}').str("note").int1(1).op('s').op('t').op('R').stop();
    Unpickled t;
    ASSERT_TRUE(run(from_type.b, t).ok()) << run(from_type.b).to_string();
    EXPECT_EQ(t.root->kind, Value::Kind::tensor);
    P subclass;  // any other class is a subclass that may behave differently: refused
    subclass.global("torch._tensor", "_rebuild_from_type_v2").op('(').global("torch._utils", "_rebuild_tensor_v2");
    subclass.global("mylib", "FancyTensor").op(')').op('}').op('t').op('R').stop();
    EXPECT_REFUSED(subclass.b, unsupported_tensor, "torch.Tensor or Parameter");
    P other_fn;
    other_fn.global("torch._tensor", "_rebuild_from_type_v2").op('(').global("mylib", "build");
    other_fn.global("torch._tensor", "Tensor").op(')').op('}').op('t').op('R').stop();
    EXPECT_REFUSED(other_fn.b, unsupported_tensor, "calls mylib.build");
    P tensor_call;  // the class itself is never called
    tensor_call.global("torch._tensor", "Tensor").op(')').op('R').stop();
    EXPECT_REFUSED(tensor_call.b, disallowed_global, "calls torch._tensor.Tensor");

    // _rebuild_parameter_with_state(tensor, True, OrderedDict(), {'_is_sharded': True}): the tensor.
    P with_state;
    with_state.global("torch._utils", "_rebuild_parameter_with_state").op('(').tensor2d("0", 2, 2);
    with_state.op(0x88).global("collections", "OrderedDict").op(')').op('R');
    with_state.op('}').str("_is_sharded").op(0x88).op('s').op('t').op('R').stop();
    Unpickled w;
    ASSERT_TRUE(run(with_state.b, w).ok()) << run(with_state.b).to_string();
    EXPECT_TRUE(w.root->parameter);
}

TEST(Pickle, MemoKeysAreBoundedAndDense) {
    P far;  // LONG_BINPUT at a key no Python pickler reaches
    far.op('N').op('r').le(std::uint64_t(1) << 30, 4).stop();
    EXPECT_REFUSED(far.b, limit_exceeded, "memo key 1073741824");
    P sparse;  // keys may skip (a pickler's memo after clear_memo); MEMOIZE counts entries, as Python does
    sparse.op('(').op('N').op('q').le(5, 1).int1(7).op(0x94).op('h').le(1, 1).op('h').le(5, 1).op('t').stop();
    Unpickled u;
    ASSERT_TRUE(run(sparse.b, u).ok()) << run(sparse.b).to_string();
    ASSERT_EQ(u.root->items.size(), 4u);
    EXPECT_EQ(u.root->items[2]->integer, 7);  // MEMOIZE stored 7 under key 1 (one entry before it)
    EXPECT_EQ(u.root->items[3]->kind, Value::Kind::none);
}
