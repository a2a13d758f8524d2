using Centrifugo.Actors.Outbox;

namespace Centrifugo.Actors.Tests.Outbox;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class OutboxSqlTests
{
    [Theory]
    [InlineData("outbox", "\"outbox\"")]
    [InlineData("MyOutbox", "\"myoutbox\"")]
    [InlineData("App.Outbox_1", "\"app\".\"outbox_1\"")]
    [InlineData("_x", "\"_x\"")]
    public void Table_names_are_folded_to_lower_case_and_quoted(string name, string quoted) =>
        Assert.Equal(quoted, OutboxSql.QuoteTableName(name));

    [Theory]
    [InlineData("")]
    [InlineData("1outbox")]
    [InlineData("out box")]
    [InlineData("outbox; DROP TABLE users")]
    [InlineData("a.b.c")]
    [InlineData("\"outbox\"")]
    [InlineData("outbox-1")]
    [InlineData("schema.")]
    public void Invalid_table_names_are_rejected_with_the_setting_named(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new OutboxSql(name, "dl"));
        Assert.Contains("outbox_table_name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_dead_letter_table_name_is_rejected() =>
        Assert.Contains("dead_letter_table_name", Assert.Throws<ArgumentException>(() => new OutboxSql("outbox", "dl;x")).Message, StringComparison.Ordinal);

    [Fact]
    public void Lock_key_is_stable_and_differs_between_names_that_collide_in_centrifugo()
    {
        // Centrifugo's lock names "..._pg1" + "0" and "..._pg" + "10" are the same string; ours are two keys.
        Assert.Equal(OutboxLockKey.For("pg1"), OutboxLockKey.For("pg1"));
        Assert.NotEqual(OutboxLockKey.For("pg1"), OutboxLockKey.For("pg"));
        // pinned: the key must never change between versions, or a rolling upgrade would run a partition twice
        Assert.Equal(1402891518, OutboxLockKey.For("postgres_outbox"));
    }
}
