using System.Reflection;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Tests.Diagnostics;

/// <summary>Every [LoggerMessage] in the library and the host has its own event id, inside its namespace's band.</summary>
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
    public void Bands_do_not_overlap()
    {
        var bands = LogEvents.Bands;
        for (var i = 1; i < bands.Count; i++)
        {
            Assert.True(bands[i].First > bands[i - 1].Last, $"{bands[i].Subject} overlaps {bands[i - 1].Subject}");
        }
    }
}
