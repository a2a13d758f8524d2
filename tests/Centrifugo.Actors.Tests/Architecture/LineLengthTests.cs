namespace Centrifugo.Actors.Tests.Architecture;

/// <summary>
/// No C# line in src/ or tests/ (bin/ and obj/ aside) is longer than <see cref="Limit"/> characters, the
/// <c>max_line_length</c> of .editorconfig. The only exceptions are the lines of <see cref="Allowed"/>: text inside
/// multi-line raw string literals (JSON fixtures, a usage text) where wrapping would change the string itself.
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class LineLengthTests
{
    private const int Limit = 140;

    private const string Fixture = "JSON fixture inside a multi-line raw string literal: its whitespace is part of the text";
    private const string Usage = "usage text inside a raw string literal: wrapping it would change what --help prints";

    /// <summary>Lines allowed over the limit: file (from the repository root), start of the trimmed line, reason.</summary>
    private static readonly (string File, string Prefix, string Reason)[] Allowed =
    [
        ("tests/Centrifugo.Actors.Benchmarks/BenchOptions.cs", "--deployed-warmup-seconds N", Usage),
        ("tests/Centrifugo.Actors.Benchmarks/BenchOptions.cs", "--deployed-statements on|off", Usage),
        ("tests/Centrifugo.Actors.Benchmarks/BenchOptions.cs", "--deployed-producer-reset on|off", Usage),
        ("tests/Centrifugo.Actors.Tests/Cluster/KubernetesDiscoveryTests.cs", "\"spec\":{\"containers\":", Fixture),
        ("tests/Centrifugo.Actors.Tests/Cluster/KubernetesDiscoveryTests.cs", "\"status\":{\"phase\":\"Running\",", Fixture),
        ("tests/Centrifugo.Actors.Tests/Configuration/ConfigParsingTests.cs", "\"consumers\": [ {\"name\":\"pg_main\",", Fixture),
        ("tests/Centrifugo.Actors.Tests/Configuration/ConfigParsingTests.cs", "\"cluster\": {\"system_name\":\"prod\",", Fixture),
        ("tests/Centrifugo.Actors.Tests/Configuration/ConfigParsingTests.cs", "\"tls\":{\"enabled\":true,\"cert_pem\":", Fixture),
        ("tests/Centrifugo.Actors.Tests/Configuration/ConfigParsingTests.cs", "\"health\": {\"enabled\": true}, \"swagger\": {},", Fixture),
        ("tests/Centrifugo.Actors.Tests/Hosting/AdminApiTests.cs", "\"dead_letter_partition\":0,\"dead_letter_offset\":0,", Fixture),
    ];

    [Fact]
    public void No_line_in_src_or_tests_is_longer_than_the_limit()
    {
        var (tooLong, unused) = Check(FindRoot(), Allowed);

        Assert.True(tooLong.Count == 0,
            $"{tooLong.Count} line(s) over {Limit} characters (wrap them, see .editorconfig):\n" + string.Join("\n", tooLong));
        Assert.True(unused.Count == 0,
            "allowed long lines that are no longer over the limit (remove them from the list):\n" + string.Join("\n", unused));
    }

    [Fact]
    public void A_long_line_is_reported_by_file_and_line_unless_it_is_allowed()
    {
        var root = Directory.CreateTempSubdirectory("line-length-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "src", "A"));
            Directory.CreateDirectory(Path.Combine(root, "tests", "obj"));
            File.WriteAllLines(Path.Combine(root, "src", "A", "Long.cs"),
            [
                "namespace A;",
                "// " + new string('x', Limit - 3),
                "// " + new string('y', Limit - 2),
                "// allowed " + new string('z', Limit),
            ]);
            File.WriteAllText(Path.Combine(root, "tests", "obj", "Generated.cs"), new string('g', Limit + 1));

            var (tooLong, unused) = Check(root, [("src/A/Long.cs", "// allowed", "test"), ("src/A/Long.cs", "// gone", "test")]);

            Assert.Equal($"src/A/Long.cs:3: {Limit + 1} characters", Assert.Single(tooLong));
            Assert.Equal("src/A/Long.cs: // gone", Assert.Single(unused));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Lines over the limit not allowed (file:line), and allowed entries that match no such line.</summary>
    private static (List<string> TooLong, List<string> Unused) Check(
        string root, IReadOnlyCollection<(string File, string Prefix, string Reason)> allowed)
    {
        var tooLong = new List<string>();
        var used = new HashSet<(string, string)>();
        foreach (var file in SourceFiles(root))
        {
            var relative = Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/');
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                if (lines[i].Length <= Limit)
                {
                    continue;
                }
                var trimmed = lines[i].TrimStart();
                var entry = allowed.FirstOrDefault(a => a.File == relative && trimmed.StartsWith(a.Prefix, StringComparison.Ordinal));
                if (entry.File is null)
                {
                    tooLong.Add($"{relative}:{i + 1}: {lines[i].Length} characters");
                }
                else
                {
                    used.Add((entry.File, entry.Prefix));
                }
            }
        }
        var unused = allowed.Where(a => !used.Contains((a.File, a.Prefix))).Select(a => $"{a.File}: {a.Prefix}").ToList();
        return (tooLong, unused);
    }

    /// <summary>Every *.cs under src/ and tests/, without build output (bin/, obj/).</summary>
    private static IEnumerable<string> SourceFiles(string root) =>
        new[] { "src", "tests" }
            .Select(top => Path.Combine(root, top))
            .Where(Directory.Exists)
            .SelectMany(top => Directory.EnumerateFiles(top, "*.cs", SearchOption.AllDirectories))
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Order(StringComparer.Ordinal);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Centrifugo.Actors.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root (Centrifugo.Actors.sln) not found above the test assembly");
    }
}
