using System.Reflection;
using System.Reflection.Emit;
using System.Text;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Architecture;

/// <summary>
/// The folders of the library (one namespace each) form a DAG: no namespace depends, directly or through others, on
/// a namespace that depends back on it. The intended flow is Configuration → Delivery → Partitions (the entity core,
/// with Diagnostics observing it) → Sharding → the sources (Outbox, Kafka) → Operations (admin) → Hosting
/// (composition) → the Host project; the host's namespaces are in the same graph.
/// <para>
/// What the graph sees, read from the compiled assemblies by reflection and from the IL of every method body:
/// base types and interfaces, generic arguments and constraints, attributes and their <c>typeof</c> arguments,
/// fields, properties, events, method signatures, local variables, catch clauses, and every type, method and field
/// token in the IL (calls, <c>new</c>, field access, casts, <c>typeof</c>). Lambdas, local functions and async
/// methods compile to types nested in the type that declares them, so they count for its namespace. What it cannot
/// see: constants (the compiler copies a <c>const</c>'s value, so naming <c>OutboxEventId.X</c> leaves no trace),
/// <c>nameof</c>, and doc-comment <c>cref</c>s: none of these is a dependency at run time.
/// </para>
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class NamespaceGraphTests(ITestOutputHelper output)
{
    private static readonly Assembly[] Assemblies =
        [typeof(LogEvents).Assembly, typeof(Centrifugo.Actors.Host.NodeHost).Assembly];

    private static bool IsOurs(string ns) => ns == "Centrifugo.Actors" || ns.StartsWith("Centrifugo.Actors.", StringComparison.Ordinal);

    [Fact]
    public void The_namespaces_of_the_library_and_the_host_have_no_cycle()
    {
        var graph = NamespaceGraph.Build(Assemblies, IsOurs);
        output.WriteLine(NamespaceGraph.Describe(graph));

        var cycles = NamespaceGraph.Cycles(graph);

        Assert.True(cycles.Count == 0, "namespace cycles:\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void The_graph_sees_references_made_only_inside_method_bodies()
    {
        var graph = NamespaceGraph.Build(Assemblies, IsOurs);

        // The admin's Kafka dead-letter replay names the Kafka client's configuration builder only in a method body.
        Assert.Contains(("Centrifugo.Actors.Operations", "Centrifugo.Actors.Kafka"), graph.Keys);
        Assert.True(graph.Count > 20, $"only {graph.Count} namespace edges found");
    }
}

/// <summary>Namespace → namespace dependencies of compiled assemblies, each with one example type edge.</summary>
internal static class NamespaceGraph
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static
                                          | BindingFlags.Instance | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>Every edge between two namespaces that <paramref name="isNode"/> accepts, with its first example.</summary>
    public static Dictionary<(string From, string To), string> Build(IEnumerable<Assembly> assemblies, Func<string, bool> isNode)
    {
        var edges = new Dictionary<(string From, string To), string>();
        foreach (var type in assemblies.SelectMany(a => a.GetTypes()))
        {
            // A nested type's Namespace is its declaring type's: closures and state machines count for their owner.
            if (type.Namespace is not { } from || !isNode(from))
            {
                continue;
            }
            foreach (var (used, where) in References(type))
            {
                foreach (var named in Flatten(used))
                {
                    if (named.Namespace is { } to && to != from && isNode(to))
                    {
                        edges.TryAdd((from, to), $"{Outermost(type).FullName} → {Outermost(named).FullName} ({where})");
                    }
                }
            }
        }
        return edges;
    }

    /// <summary>
    /// Per strongly connected component of more than one namespace: its members and the shortest cycle through each
    /// of them (without repeats), each hop with its example.
    /// </summary>
    public static List<string> Cycles(Dictionary<(string From, string To), string> edges)
    {
        var next = edges.Keys.GroupBy(e => e.From)
            .ToDictionary(g => g.Key, g => g.Select(e => e.To).Order(StringComparer.Ordinal).ToList());
        var cycles = new List<string>();
        foreach (var component in StronglyConnected(next).Where(c => c.Count > 1))
        {
            var text = new StringBuilder($"{{{string.Join(", ", component.Order(StringComparer.Ordinal))}}}:");
            var seen = new HashSet<string>();
            foreach (var start in component.Order(StringComparer.Ordinal))
            {
                var path = ShortestPathBack(start, next, component);
                if (!seen.Add(string.Join(",", path.Skip(1).Order(StringComparer.Ordinal))))
                {
                    continue;
                }
                text.Append($"\n  {string.Join(" → ", path)}");
                for (var i = 0; i + 1 < path.Count; i++)
                {
                    text.Append($"\n    {path[i]} → {path[i + 1]}: {edges[(path[i], path[i + 1])]}");
                }
            }
            cycles.Add(text.ToString());
        }
        return cycles;
    }

    /// <summary>The graph, one line per namespace with what it depends on.</summary>
    public static string Describe(Dictionary<(string From, string To), string> edges) =>
        string.Join("\n", edges.Keys.GroupBy(e => e.From).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} → {string.Join(", ", g.Select(e => e.To).Order(StringComparer.Ordinal))}"));

    private static IEnumerable<(Type Type, string Where)> References(Type type)
    {
        if (type.BaseType is { } baseType)
        {
            yield return (baseType, "base type");
        }
        foreach (var item in type.GetInterfaces())
        {
            yield return (item, "interface");
        }
        foreach (var reference in GenericConstraints(type.IsGenericTypeDefinition ? type.GetGenericArguments() : [], "type constraint"))
        {
            yield return reference;
        }
        foreach (var reference in Attributes(type.CustomAttributes, "attribute"))
        {
            yield return reference;
        }
        foreach (var field in type.GetFields(Declared))
        {
            yield return (field.FieldType, field.Name);
            foreach (var reference in Attributes(field.CustomAttributes, field.Name))
            {
                yield return reference;
            }
        }
        foreach (var property in type.GetProperties(Declared))
        {
            yield return (property.PropertyType, property.Name);
            foreach (var reference in Attributes(property.CustomAttributes, property.Name))
            {
                yield return reference;
            }
        }
        foreach (var @event in type.GetEvents(Declared))
        {
            if (@event.EventHandlerType is { } handler)
            {
                yield return (handler, @event.Name);
            }
        }
        foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
        {
            foreach (var reference in MethodReferences(type, method))
            {
                yield return reference;
            }
        }
    }

    private static IEnumerable<(Type Type, string Where)> MethodReferences(Type type, MethodBase method)
    {
        var where = method.Name;
        if (method is MethodInfo info)
        {
            yield return (info.ReturnType, where);
        }
        foreach (var parameter in method.GetParameters())
        {
            yield return (parameter.ParameterType, where);
            foreach (var reference in Attributes(parameter.CustomAttributes, where))
            {
                yield return reference;
            }
        }
        foreach (var reference in Attributes(method.CustomAttributes, where))
        {
            yield return reference;
        }
        var methodArguments = method.IsGenericMethodDefinition ? method.GetGenericArguments() : null;
        foreach (var reference in GenericConstraints(methodArguments ?? [], where))
        {
            yield return reference;
        }
        if (method.GetMethodBody() is not { } body)
        {
            yield break;
        }
        foreach (var local in body.LocalVariables)
        {
            yield return (local.LocalType, where);
        }
        foreach (var clause in body.ExceptionHandlingClauses)
        {
            if (clause.Flags == ExceptionHandlingClauseOptions.Clause && clause.CatchType is { } caught)
            {
                yield return (caught, where);
            }
        }
        var typeArguments = type.IsGenericType ? type.GetGenericArguments() : null;
        foreach (var token in Tokens(body.GetILAsByteArray() ?? []))
        {
            switch (method.Module.ResolveMember(token, typeArguments, methodArguments))
            {
                case Type named:
                    yield return (named, where);
                    break;
                case MethodBase called:
                    if (called.DeclaringType is { } declaring)
                    {
                        yield return (declaring, where);
                    }
                    foreach (var argument in called.IsGenericMethod ? called.GetGenericArguments() : [])
                    {
                        yield return (argument, where);
                    }
                    break;
                case FieldInfo field when field.DeclaringType is { } owner:
                    yield return (owner, where);
                    break;
            }
        }
    }

    /// <summary>The metadata tokens of the type, method and field operands in a method body's IL.</summary>
    private static IEnumerable<int> Tokens(byte[] il)
    {
        var at = 0;
        while (at < il.Length)
        {
            var value = (short)il[at++];
            if (value == 0xFE)
            {
                value = (short)(0xFE00 | il[at++]);
            }
            var opCode = OpCodesByValue[value];
            switch (opCode.OperandType)
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok or OperandType.InlineType:
                    yield return BitConverter.ToInt32(il, at);
                    at += 4;
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    at += 1;
                    break;
                case OperandType.InlineVar:
                    at += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    at += 8;
                    break;
                case OperandType.InlineSwitch:
                    at += 4 + (4 * BitConverter.ToInt32(il, at));
                    break;
                default: // InlineBrTarget, InlineI, InlineSig, InlineString, ShortInlineR
                    at += 4;
                    break;
            }
        }
    }

    private static IEnumerable<(Type Type, string Where)> GenericConstraints(Type[] parameters, string where) =>
        parameters.SelectMany(p => p.GetGenericParameterConstraints()).Select(c => (c, where));

    private static IEnumerable<(Type Type, string Where)> Attributes(IEnumerable<CustomAttributeData> attributes, string where)
    {
        foreach (var attribute in attributes)
        {
            yield return (attribute.AttributeType, where);
            foreach (var argument in attribute.ConstructorArguments.Concat(attribute.NamedArguments.Select(n => n.TypedValue)))
            {
                if (argument.Value is Type named)
                {
                    yield return (named, where);
                }
            }
        }
    }

    /// <summary>The named types in a type: an array's element, a generic instance's definition and arguments.</summary>
    private static IEnumerable<Type> Flatten(Type type)
    {
        if (type.HasElementType)
        {
            return Flatten(type.GetElementType()!);
        }
        if (type.IsGenericParameter)
        {
            return [];
        }
        if (type.IsGenericType && !type.IsGenericTypeDefinition)
        {
            return type.GetGenericArguments().SelectMany(Flatten).Prepend(type.GetGenericTypeDefinition());
        }
        return [type];
    }

    private static Type Outermost(Type type)
    {
        while (type.DeclaringType is { } declaring && !type.IsGenericParameter)
        {
            type = declaring;
        }
        return type;
    }

    /// <summary>Tarjan's algorithm.</summary>
    private static List<HashSet<string>> StronglyConnected(Dictionary<string, List<string>> next)
    {
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var components = new List<HashSet<string>>();

        void Visit(string node)
        {
            index[node] = low[node] = index.Count;
            stack.Push(node);
            onStack.Add(node);
            foreach (var to in next.GetValueOrDefault(node) ?? [])
            {
                if (!index.ContainsKey(to))
                {
                    Visit(to);
                    low[node] = Math.Min(low[node], low[to]);
                }
                else if (onStack.Contains(to))
                {
                    low[node] = Math.Min(low[node], index[to]);
                }
            }
            if (low[node] == index[node])
            {
                var component = new HashSet<string>();
                string member;
                do
                {
                    member = stack.Pop();
                    onStack.Remove(member);
                    component.Add(member);
                } while (member != node);
                components.Add(component);
            }
        }

        foreach (var node in next.Keys.Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(node))
            {
                Visit(node);
            }
        }
        return components;
    }

    /// <summary>The shortest path from <paramref name="start"/> back to itself inside its component.</summary>
    private static List<string> ShortestPathBack(string start, Dictionary<string, List<string>> next, HashSet<string> component)
    {
        var previous = new Dictionary<string, string>();
        var queue = new Queue<string>([start]);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            foreach (var to in next.GetValueOrDefault(node) ?? [])
            {
                if (to == start)
                {
                    var path = new List<string> { start };
                    for (var at = node; at != start; at = previous[at])
                    {
                        path.Insert(1, at);
                    }
                    path.Add(start);
                    return path;
                }
                if (component.Contains(to) && previous.TryAdd(to, node))
                {
                    queue.Enqueue(to);
                }
            }
        }
        throw new InvalidOperationException($"{start} is in a component but no path leads back to it");
    }
}
