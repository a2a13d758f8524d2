using System.Reflection;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Tests.Diagnostics;

/// <summary>
/// Every [LoggerMessage] in the library and the host has its own event id, inside its namespace's band; in the library
/// every id is a named constant of its folder's <c>…EventId</c> class and every message sits in its folder's <c>…Log</c>
/// class under the constant's name.
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class LogEventIdTests
{
    private static readonly Assembly[] Assemblies =
        [typeof(LogEvents).Assembly, typeof(Centrifugo.Actors.Host.NodeHost).Assembly];

    private static IEnumerable<(int Id, MethodInfo Method)> Messages() =>
        from assembly in Assemblies
        from type in assembly.GetTypes()
        from method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static
                                       | BindingFlags.Instance | BindingFlags.DeclaredOnly)
        let attribute = method.GetCustomAttribute<LoggerMessageAttribute>()
        where attribute is not null
        select (attribute.EventId, method);

    private static string Name(MethodInfo method) => $"{method.DeclaringType!.FullName}.{method.Name}";

    /// <summary>The named ids of the library: (the folder's namespace, the constant's name, its value).</summary>
    private static IEnumerable<(string Namespace, string Name, int Id)> Constants() =>
        from type in typeof(LogEvents).Assembly.GetTypes()
        where type.Namespace == "Centrifugo.Actors" && type.Name.EndsWith("EventId", StringComparison.Ordinal)
        from field in type.GetFields(BindingFlags.Public | BindingFlags.Static)
        where field.IsLiteral && field.FieldType == typeof(int)
        select ($"Centrifugo.Actors.{type.Name[..^"EventId".Length]}", $"{type.Name}.{field.Name}", (int)field.GetRawConstantValue()!);

    [Fact]
    public void The_reflection_finds_the_known_messages()
    {
        var messages = Messages().ToList();
        Assert.True(messages.Count > 50, $"only {messages.Count} [LoggerMessage] methods found");
        Assert.Contains(messages, m => m.Id == 4000 && m.Method.DeclaringType!.Name == "KafkaLog");
    }

    [Fact]
    public void No_event_id_is_used_twice()
    {
        var duplicates = Messages().GroupBy(m => m.Id).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => Name(m.Method)))}").ToList();
        Assert.True(duplicates.Count == 0, "duplicate event ids:\n" + string.Join("\n", duplicates));
    }

    [Fact]
    public void Every_event_id_lies_in_the_band_of_its_namespace()
    {
        var misplaced = new List<string>();
        foreach (var (id, method) in Messages())
        {
            var band = LogEvents.Bands.SingleOrDefault(b => b.Contains(id));
            var ns = method.DeclaringType!.Namespace ?? "";
            if (band is null || !band.Namespaces.Contains(ns, StringComparer.Ordinal))
            {
                misplaced.Add($"{id} {Name(method)} (band: {band?.Subject ?? "none"})");
            }
        }
        Assert.True(misplaced.Count == 0, "event ids outside their band:\n" + string.Join("\n", misplaced));
    }

    [Fact]
    public void Every_event_id_constant_lies_in_a_band_of_its_folder_and_is_named_once()
    {
        var constants = Constants().ToList();
        Assert.True(constants.Count > 50, $"only {constants.Count} event id constants found");
        var misplaced = constants
            .Where(c => !LogEvents.Bands.Any(b => b.Contains(c.Id) && b.Namespaces.Contains(c.Namespace, StringComparer.Ordinal)))
            .Select(c => $"{c.Name} = {c.Id}");
        var duplicates = constants.GroupBy(c => c.Id).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(c => c.Name))}");
        var problems = misplaced.Concat(duplicates).ToList();
        Assert.True(problems.Count == 0, "event id constants outside their folder's bands, or used twice:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void Every_library_message_is_in_its_folders_log_class_with_the_constant_of_its_name()
    {
        var constants = Constants().ToDictionary(c => c.Name, c => c.Id, StringComparer.Ordinal);
        var named = new HashSet<string>(StringComparer.Ordinal);
        var wrong = new List<string>();
        foreach (var (id, method) in Messages().Where(m => m.Method.DeclaringType!.Assembly == typeof(LogEvents).Assembly))
        {
            var folder = method.DeclaringType!.Namespace!["Centrifugo.Actors.".Length..];
            var constant = $"{folder}EventId.{method.Name}";
            if (method.DeclaringType.Name != folder + "Log")
            {
                wrong.Add($"{Name(method)}: not in {folder}Log");
            }
            else if (!constants.TryGetValue(constant, out var value) || value != id)
            {
                wrong.Add($"{Name(method)}: id {id} is not {constant}");
            }
            named.Add(constant);
        }
        wrong.AddRange(constants.Keys.Where(c => !named.Contains(c)).Select(c => $"{c}: no message"));
        Assert.True(wrong.Count == 0, "messages and event id constants that do not match:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void Bands_do_not_overlap()
    {
        var bands = LogEvents.Bands;
        for (var i = 1; i < bands.Count; i++)
        {
            Assert.True(bands[i].First > bands[i - 1].Last, $"{bands[i].Subject} overlaps {bands[i - 1].Subject}");
        }
    }
}
